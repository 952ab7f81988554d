#!/usr/bin/env bash
# One command for the packaging benchmark: egress (`egress bench-package --gzip`: flate2 level 6
# and rpgp on two threads, what the Encrypt stage does for a gzip export) and its peer
# (`gzip -6 < F | gpg --encrypt --compress-algo none`) package the same ~1 GB CSV file to the
# same RSA 3072 key in the same run; prints seconds, MB/s (of input), peak RSS and the ratio of
# egress's speed to the peer's. The bar: ratio >= 0.5, peak RSS well under 300 MB.
#
#   infra/bench/packaging.sh [--mb N] [--rounds N]
#
# Tools run interleaved for --rounds rounds (default 3) and each is judged by its best round
# (the machine is shared). Peak RSS is the largest process of each run (os.wait4's ru_maxrss:
# for the peer, the larger of gzip and gpg). After timing, egress's output is decrypted with gpg
# and gunzipped, and must give back the input's SHA-256.
#
# EGRESS_BENCH_DIR (default <repo>/data) holds the CSV file (made once, reused) and the outputs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mb=1000 rounds=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mb) mb="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "usage: $0 [--mb N] [--rounds N]" >&2; exit 2 ;;
  esac
done
for tool in gzip gpg gpgconf python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (infra/testbed/apt.sh installs gnupg)" >&2; exit 1; }
done
data="${EGRESS_BENCH_DIR:-$root/data}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$data/bench/packaging"
mkdir -p "$work"
cd "$root"
cargo build --release --locked --bin egress >&2
# A copy of the binary: another build into the same target folder cannot swap it mid-run.
cp "$target/release/egress" "$work/egress"
bin="$work/egress"

input="$work/transactions-${mb}mb.csv"
if [[ ! -s "$input" ]]; then
  echo "making $input (${mb} MB of synthetic transactions)" >&2
  python3 - "$input.tmp" "$mb" <<'PY'
import random, sys
path, mb = sys.argv[1], int(sys.argv[2])
random.seed(20261124)
target = mb * 1_000_000
ibans = [f"DE{random.randrange(10**19, 10**20)}" for _ in range(20_000)]
amounts = [f"{random.lognormvariate(4, 1.5):.2f}" for _ in range(100_000)]
currencies = ["EUR"] * 8 + ["USD", "GBP", "CHF", "PLN"]
categories = ["5411", "5812", "4111", "5999", "6011", "4829", "7995", "5732", "5311", "4121"]
countries = ["DE", "FR", "NL", "IT", "ES", "AT", "BE", "PL", "GB", "US", "CH", "LU"]
words = ("payment invoice transfer salary rent grocery card refund fee subscription travel hotel fuel "
         "insurance utilities loan interest dividend donation tax online store cash withdrawal atm").split()
texts = [" ".join(random.choices(words, k=random.randint(2, 6))) for _ in range(5_000)]
flags = ["false"] * 97 + ["true"] * 3
written, i, batch = 0, 0, 50_000
with open(path, "w", encoding="ascii", newline="") as f:
    header = "transaction_id,account_iban,counterparty_iban,amount,currency,booked_at,mcc,country,description,flagged\n"
    f.write(header)
    written += len(header)
    while written < target:
        cols = [random.choices(p, k=batch) for p in (ibans, ibans, amounts, currencies, categories, countries, texts, flags)]
        rows = []
        for j, (a, c, amt, cur, mcc, cc, text, flag) in enumerate(zip(*cols)):
            n = i + j
            s = n * 7 % 2_678_400
            rows.append(f"tx{n:012d},{a},{c},{amt},{cur},2026-10-{1 + s // 86400:02d}T{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z,{mcc},{cc},{text},{flag}\n")
        chunk = "".join(rows)
        f.write(chunk)
        written += len(chunk)
        i += batch
PY
  mv "$input.tmp" "$input"
fi

# A GnuPG home of its own with an RSA 3072 key (signing primary, encryption subkey), the kind
# banks and FIUs register; its agent is stopped at the end.
gnupg="$(mktemp -d)"
chmod 700 "$gnupg"
cleanup() { GNUPGHOME="$gnupg" gpgconf --kill gpg-agent || true; rm -rf "$gnupg"; }
trap cleanup EXIT
export GNUPGHOME="$gnupg"
uid="Bench Recipient <bench@fiu.example>"
gpg --batch --quiet --passphrase '' --pinentry-mode loopback --quick-gen-key "$uid" rsa3072 sign never 2>/dev/null
fpr="$(gpg --batch --with-colons --list-keys "=$uid" | awk -F: '/^fpr/ {print $10; exit}')"
gpg --batch --quiet --passphrase '' --pinentry-mode loopback --quick-add-key "$fpr" rsa3072 encr never 2>/dev/null
gpg --batch --armor --export "$fpr" >"$work/recipient.asc"

# measure TOOL CMD...: run CMD, print one JSON line (wall seconds and the largest process's
# peak RSS, as the parent sees them).
measure() {
  python3 - "$input" "$@" <<'PY'
import json, os, sys, time
input_path, tool, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
size = os.path.getsize(input_path)
start = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.dup2(2, 1)  # the tool's own output goes to stderr: stdout is this JSON line only
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.monotonic() - start
code = os.waitstatus_to_exitcode(status)
if code != 0:
    print(json.dumps({"tool": tool, "error": f"exit {code}"}))
    sys.exit(1)
print(json.dumps({"tool": tool, "input_bytes": size, "seconds": round(seconds, 3),
                  "mb_per_s": round(size / 1e6 / seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}))
PY
}

results="$work/results-${mb}mb.jsonl"
: >"$results"
for ((round = 1; round <= rounds; round++)); do
  rm -f "$work/peer.csv.gz.gpg" "$work/egress.csv.gz.gpg"
  measure peer bash -c 'gzip -6 <"$1" | gpg --batch --quiet --trust-model always --compress-algo none --cipher-algo AES256 --encrypt -r "$2" -o "$3"' \
    _ "$input" "$fpr" "$work/peer.csv.gz.gpg" | tee -a "$results"
  measure egress "$bin" bench-package --input "$input" --recipient-key "$work/recipient.asc" --gzip \
    --output "$work/egress.csv.gz.gpg" | tee -a "$results"
done

echo "checking egress's output: gpg --decrypt | gzip -d gives the input back" >&2
want="$(sha256sum "$input" | cut -d' ' -f1)"
got="$(gpg --batch --quiet --decrypt "$work/egress.csv.gz.gpg" | gzip -dc | sha256sum | cut -d' ' -f1)"
[[ "$want" == "$got" ]] || { echo "egress's output does not decrypt to the input ($got != $want)" >&2; exit 1; }
ls -l "$work/peer.csv.gz.gpg" "$work/egress.csv.gz.gpg" >&2

python3 - "$results" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}
for r in runs:
    if "error" in r:
        sys.exit(f"{r['tool']} failed: {r['error']}")
    if r["tool"] not in best or r["seconds"] < best[r["tool"]]["seconds"]:
        best[r["tool"]] = r
print(f"{'tool':<8} {'rounds':>6} {'best s':>8} {'MB/s':>8} {'peak RSS MB':>12}   (input {best['egress']['input_bytes'] / 1e6:.0f} MB)")
for tool in ("peer", "egress"):
    b = best[tool]
    n = sum(1 for r in runs if r["tool"] == tool)
    print(f"{tool:<8} {n:>6} {b['seconds']:>8.2f} {b['mb_per_s']:>8.1f} {max(r['peak_rss_mb'] for r in runs if r['tool'] == tool):>12.1f}")
ratio = best["egress"]["mb_per_s"] / best["peer"]["mb_per_s"]
rss = max(r["peak_rss_mb"] for r in runs if r["tool"] == "egress")
print(f"ratio egress/peer speed: {ratio:.2f} (bar >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}); "
      f"egress peak RSS {rss:.0f} MB (bar < 300 MB: {'met' if rss < 300 else 'NOT met'})")
PY
echo "raw results: $results" >&2
