#!/usr/bin/env bash
# One command for the delivery benchmark: `egress serve` (release build) exports ~1 GiB of CSV
# (the synthetic transactions dataset, through the dataset root and the HTTP API) to every
# destination, each on a real local server: SFTP (asyncssh), S3 (moto), Azure Blob (Azurite),
# GCS (its emulator), a webhook receiver (file mode), and the download link. Prints per
# destination: seconds (the receipt's started..delivered), MB/s and the server process's peak
# RSS, and the speed of a peer client (OpenSSH `sftp`, `curl` POST) on the same server.
# The bar: every peak RSS under 300 MB (the files are streamed, never whole in memory).
#
#   infra/bench/destinations.sh [--rows N]
#
# --rows: rows of the dataset (default 7,432,000: ~1 GiB of CSV; 140000 for a ~20 MB smoke run).
# First the export runs once with all six destinations at once (the whole pipeline: extract,
# encode, deliver; reported, not held to the bar); then each destination is delivered again on
# its own (`POST /v1/exports/{id}/deliveries/{n}/retry`, no extract) and the download link is
# fetched, each in a freshly started server whose peak RSS (VmHWM) is read after. The
# SFTP copy and what the webhook receiver hashed are checked against the export's SHA-256.
#
# EGRESS_BENCH_DIR (default <repo>/data) holds the dataset (made once, reused) and the run's
# folder (removed at the end). Python with asyncssh and the GCS emulator: EGRESS_TEST_PYTHON
# (default <repo>/.venv/bin/python); moto: EGRESS_MOTO_PYTHON (<repo>/.venv-moto/bin/python);
# Azurite: EGRESS_AZURITE (<repo>/infra/azurite/node_modules/.bin/azurite-blob).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rows=7432000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    *) echo "usage: $0 [--rows N]" >&2; exit 2 ;;
  esac
done
py="${EGRESS_TEST_PYTHON:-$root/.venv/bin/python}"
moto_py="${EGRESS_MOTO_PYTHON:-$root/.venv-moto/bin/python}"
azurite="${EGRESS_AZURITE:-$root/infra/azurite/node_modules/.bin/azurite-blob}"
for tool in "$py" "$moto_py" "$azurite"; do
  [[ -x "$tool" ]] || { echo "$tool is missing (infra/testbed/python.sh, moto.sh, azurite.sh install it)" >&2; exit 1; }
done
for tool in ssh-keygen sftp curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (infra/testbed/apt.sh installs openssh-client and curl)" >&2; exit 1; }
done
data="${EGRESS_BENCH_DIR:-$root/data}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$data/bench/destinations-run"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cd "$root"
cargo build --release --locked --bin egress >&2
# A copy of the binary: another build into the same target folder cannot swap it mid-run.
cp "$target/release/egress" "$work/egress"
# Make the dataset before anything is timed (bench/transactions-<rows>, Parquet).
"$work/egress" --data-dir "$data" bench --format csv --rows "$rows" --prepare-only >&2

"$py" - "$work" "$data/bench" "$data/bench/transactions-$rows" "$moto_py" "$azurite" "$root" <<'PY'
import hashlib, json, os, socket, subprocess, sys, threading, time, urllib.parse, http.client

work, dataset_root, dataset, moto_py, azurite, root = sys.argv[1:]
py = sys.executable
BAR_MB = 300
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, cmd, port, cwd=None, env=None, ready_line=False):
    out = subprocess.PIPE if ready_line else subprocess.DEVNULL
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)
    procs.append(p)
    deadline = time.monotonic() + 60
    if ready_line:
        while p.stdout.readline().decode().strip() != "ready":
            if p.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{name} did not start")
        threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
        return p
    while True:
        if p.poll() is not None:
            sys.exit(f"{name} exited at start ({p.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return p
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"{name} did not listen on {port}")
            time.sleep(0.2)


def request(port, method, path, body=None, token=None, headers=None, out=None):
    """One HTTP request; returns (status, headers, body bytes or the SHA-256 hex of a streamed body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    if out == "sha256":
        digest, n = hashlib.sha256(), 0
        while chunk := r.read(1 << 20):
            digest.update(chunk)
            n += len(chunk)
        return r.status, dict(r.getheaders()), (digest.hexdigest(), n)
    payload = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), payload


def vm_hwm_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc")


def reset_hwm(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


WEBHOOK = r'''
import hashlib, http.server, json, sys
log = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        digest, n = hashlib.sha256(), 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 1 << 20)); digest.update(chunk); n += len(chunk); left -= len(chunk)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", 0))
            while left:
                chunk = self.rfile.read(min(left, 1 << 20)); digest.update(chunk); n += len(chunk); left -= len(chunk)
        log.write(json.dumps({"path": self.path, "bytes": n, "sha256": digest.hexdigest()}) + "\n")
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''

try:
    # --- the destinations' servers
    sftp_dir = os.path.join(work, "sftp")
    os.makedirs(os.path.join(sftp_dir, "root"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(sftp_dir, "client_key")], check=True)
    sftp_port = free_port()
    start("sftp server", [py, os.path.join(root, "tests/servers/sftp_server.py"), "--port", str(sftp_port), "--root", os.path.join(sftp_dir, "root"),
                          "--host-key", os.path.join(sftp_dir, "host_key"), "--user", "partner", "--password", "bench-password",
                          "--authorized-key", os.path.join(sftp_dir, "client_key.pub"), "--log", os.devnull], sftp_port, ready_line=True)
    host_key = subprocess.run(["ssh-keygen", "-lf", os.path.join(sftp_dir, "host_key")], check=True, capture_output=True, text=True).stdout.split()[1]
    moto_port = free_port()
    start("moto", [moto_py, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)], moto_port)
    azurite_port = free_port()
    os.makedirs(os.path.join(work, "azurite"))
    start("azurite", [azurite, "--blobHost", "127.0.0.1", "--blobPort", str(azurite_port), "--location", os.path.join(work, "azurite"),
                      "--silent", "--skipApiVersionCheck", "--loose"], azurite_port)
    gcs_port = free_port()
    os.makedirs(os.path.join(work, "gcs"))
    start("gcs emulator", [py, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(gcs_port)], gcs_port, cwd=os.path.join(work, "gcs"))
    hook_port = free_port()
    hook_log = os.path.join(work, "webhook.jsonl")
    start("webhook receiver", [py, "-c", WEBHOOK, str(hook_port), hook_log], hook_port)

    # Buckets and the container (moto takes unsigned requests; Azurite an account SAS).
    assert request(moto_port, "PUT", "/partner-inbox")[0] == 200
    assert request(gcs_port, "POST", "/storage/v1/b?project=bench", {"name": "partner-inbox"})[0] == 200
    azurite_account, azurite_key = "devstoreaccount1", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    sas = subprocess.run([py, os.path.join(root, "tests/support/object_stores.py"), "azure-sas", azurite_account, azurite_key],
                         check=True, capture_output=True, text=True).stdout.strip()
    status = request(azurite_port, "PUT", f"/{azurite_account}/partner-inbox?restype=container&{sas}", headers={"Content-Length": "0"})[0]
    assert status == 201, f"create container: {status}"

    # --- egress serve
    port = free_port()
    env = dict(os.environ, RUST_LOG="warn", AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}", AWS_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true", EGRESS_S3_FORCE_PATH_STYLE="1", EGRESS_GCS_ENDPOINT=f"http://127.0.0.1:{gcs_port}",
               EGRESS_AZURE_BLOB_ENDPOINT=f"http://127.0.0.1:{azurite_port}/{{account}}")
    bin_ = os.path.join(work, "egress")
    data_dir = os.path.join(work, "data")
    server = start("egress serve", [bin_, "--data-dir", data_dir, "--addr", f"127.0.0.1:{port}", "serve", "--dataset-root", dataset_root], port, env=env)
    token = subprocess.run([bin_, "--data-dir", data_dir, "keys", "create", "--tenant", "acme", "--permissions", "exports:admin"],
                           check=True, capture_output=True, text=True).stdout.strip()

    def api(method, path, body=None, want=(200,)):
        status, headers, payload = request(port, method, path, body, token)
        if status not in want:
            sys.exit(f"{method} {path}: {status} {payload[:500]!r}")
        return json.loads(payload) if payload else None, headers

    def credential(name, secret):
        return api("POST", "/v1/credentials", {"name": name, "secret": secret}, want=(201,))[0]["id"]

    sftp_cred = credential("bench-sftp", {"type": "password", "password": "bench-password"})
    aws_cred = credential("bench-s3", {"type": "aws_access_key", "access_key_id": "AKIAEGRESSBENCH00001", "secret_access_key": "moto-accepts-any"})
    azure_cred = credential("bench-azure", {"type": "azure_shared_key", "account_key": azurite_key})
    api("PUT", "/v1/settings", {"allowed_hosts": [f"127.0.0.1:{hook_port}"]})
    names = ["download", "sftp", "s3", "azure_blob", "gcs", "webhook"]
    destinations = [
        {"type": "download"},
        {"type": "sftp", "host": "127.0.0.1", "port": sftp_port, "username": "partner", "directory": "inbound", "host_key": host_key, "credential": sftp_cred},
        {"type": "s3", "bucket": "partner-inbox", "prefix": "bench", "credential": aws_cred},
        {"type": "azure_blob", "account": azurite_account, "container": "partner-inbox", "prefix": "bench", "credential": azure_cred},
        {"type": "gcs", "bucket": "partner-inbox", "prefix": "bench"},
        {"type": "webhook", "url": f"http://127.0.0.1:{hook_port}/egress", "mode": "file", "timeout_secs": 300},
    ]
    spec = {"name": "bench", "source": {"type": "dataset", "local_path": dataset}, "format": "csv", "destinations": destinations}

    def wait(export_id, run):
        while True:
            e, _ = api("GET", f"/v1/exports/{export_id}")
            if e.get("run") == run and e["status"] in ("completed", "partial", "failed", "cancelled"):
                return e
            time.sleep(0.25)

    def receipt_seconds(d):
        # RFC 3339 with up to nanoseconds and `Z`: cut to microseconds for fromisoformat.
        import re
        from datetime import datetime
        def parse(s):
            return datetime.fromisoformat(re.sub(r"(\.\d{1,6})\d*", r"\1", s).replace("Z", "+00:00"))
        return (parse(d["delivered_at"]) - parse(d["started_at"])).total_seconds()

    # --- the whole pipeline, all six destinations
    reset_hwm(server.pid)
    t0 = time.monotonic()
    created, headers = api("POST", "/v1/exports", spec, want=(202,))
    export = wait(created["id"], 1)
    whole_seconds, whole_rss = time.monotonic() - t0, vm_hwm_mb(server.pid)
    if export["status"] != "completed":
        sys.exit(f"the export ended {export['status']}: {json.dumps(export['result'].get('deliveries'))[:2000]}")
    export_id, files = export["id"], export["result"]["files"]
    total = sum(f["size"] for f in files)
    print(f"export {export_id}: {len(files)} file(s), {total / 1e6:.0f} MB, {export['result']['rows']} rows; "
          f"all six destinations in {whole_seconds:.1f} s, peak RSS {whole_rss:.0f} MB", file=sys.stderr)

    def restart():
        # A fresh process for each measurement: what the first run left resident (allocator
        # caches) is not counted against the next destination.
        server.kill()
        server.wait()
        procs.remove(server)
        return start("egress serve", server.args, port, env=env)

    rows = []
    # --- each destination again on its own, in a fresh server process
    for n in range(1, len(destinations)):
        server = restart()
        t0 = time.monotonic()
        api("POST", f"/v1/exports/{export_id}/deliveries/{n}/retry", want=(202,))
        e = wait(export_id, n + 1)
        wall = time.monotonic() - t0
        d = e["result"]["deliveries"][n]
        if d["status"] != "delivered":
            sys.exit(f"{names[n]}: {d}")
        rows.append({"destination": names[n], "seconds": receipt_seconds(d), "wall": wall, "rss": vm_hwm_mb(server.pid)})
        print(f"{names[n]}: {rows[-1]}", file=sys.stderr)

    # --- the download link: the 302 and the signed URL, streamed and hashed
    server = restart()
    t0 = time.monotonic()
    for f in files:
        _, h, _ = request(port, "GET", f"/v1/exports/{export_id}/download?file={urllib.parse.quote(f['name'])}", token=token)
        loc = urllib.parse.urlsplit(h["location"])
        status, _, (digest, n) = request(port, "GET", loc.path + "?" + loc.query, out="sha256")
        assert status == 200 and digest == f["sha256"] and n == f["size"], f"download of {f['name']}: {status}"
    wall = time.monotonic() - t0
    rows.append({"destination": "download", "seconds": wall, "wall": wall, "rss": vm_hwm_mb(server.pid)})

    # --- what arrived
    for f, d in zip(files, export["result"]["deliveries"][1]["files"]):
        got = sha256_file(os.path.join(sftp_dir, "root", "inbound", d["remote_name"]))
        assert got == f["sha256"], f"SFTP copy of {f['name']} differs"
    hooks = [json.loads(l) for l in open(hook_log)]
    want = sorted(f["sha256"] for f in files)
    assert sorted(h["sha256"] for h in hooks[-len(files):]) == want, f"the webhook receiver hashed {hooks[-len(files):]}"
    # Leave the folders small again before the peers write theirs.
    subprocess.run(["rm", "-rf", os.path.join(work, "azurite"), os.path.join(work, "gcs", ".cloudstorage")])

    # --- peers on the same servers: OpenSSH sftp (key auth) and curl, sending the SFTP copy
    local = [os.path.join(sftp_dir, "root", "inbound", d["remote_name"]) for d in export["result"]["deliveries"][1]["files"]]
    batch = os.path.join(work, "sftp.batch")
    with open(batch, "w") as b:
        b.write("mkdir peer\n")
        for i, p in enumerate(local):
            b.write(f"put {p} peer/{i}.csv\n")
    t0 = time.monotonic()
    subprocess.run(["sftp", "-q", "-i", os.path.join(sftp_dir, "client_key"), "-P", str(sftp_port), "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-b", batch, "partner@127.0.0.1"], check=True, stdout=subprocess.DEVNULL)
    peers = {"sftp": ("OpenSSH sftp", time.monotonic() - t0)}
    t0 = time.monotonic()
    for p in local:
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: text/csv", "-T", p, f"http://127.0.0.1:{hook_port}/peer"], check=True)
    peers["webhook"] = ("curl -T", time.monotonic() - t0)

    print(f"{'destination':<12} {'seconds':>8} {'MB/s':>8} {'peak RSS MB':>12} {'wall s':>8}   {'peer':<14} {'peer MB/s':>9} {'ratio':>6}"
          f"   ({total / 1e6:.0f} MB, {len(files)} file(s))")
    for r in rows:
        mbps = total / 1e6 / r["seconds"]
        line = f"{r['destination']:<12} {r['seconds']:>8.2f} {mbps:>8.1f} {r['rss']:>12.1f} {r['wall']:>8.2f}"
        if r["destination"] in peers:
            name, secs = peers[r["destination"]]
            peer_mbps = total / 1e6 / secs
            line += f"   {name:<14} {peer_mbps:>9.1f} {mbps / peer_mbps:>6.2f}"
        print(line)
    print(f"{'all six':<12} {whole_seconds:>8.2f} {total / 1e6 / whole_seconds:>8.1f} {whole_rss:>12.1f} {whole_seconds:>8.2f}"
          f"   (whole pipeline: extract, encode, six deliveries)")
    worst = max(r["rss"] for r in rows)
    print(f"largest peak RSS of one destination {worst:.0f} MB (bar < {BAR_MB} MB: {'met' if worst < BAR_MB else 'NOT met'}); "
          f"all six at once {whole_rss:.0f} MB")
    if worst >= BAR_MB:
        sys.exit(1)
finally:
    for p in reversed(procs):
        p.kill()
        p.wait()
PY
