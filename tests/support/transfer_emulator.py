"""An AWS Transfer Family API emulator for the SFTP connector tests, on loopback.

moto keeps Transfer connectors but cannot run StartFileTransfer, so this server answers the
connector operations egress uses, for real: it reads the files from S3 (moto, path-style,
unsigned) and writes them to a real SFTP server with asyncssh, checking the server's host key
against the connector's TrustedHostKeys as Transfer Family does.

Protocol: awsJson1_1, POST /, `X-Amz-Target: TransferService.<Operation>`. Operations:
DescribeConnector, StartFileTransfer, ListFileTransferResults, StartRemoteMove,
StartDirectoryListing. Transfers, moves and listings run in the background, as the service
runs them: a client polls ListFileTransferResults and reads listings from S3. S3 requests
carry a SigV4-shaped Authorization header of the test credentials: moto refuses anonymous
requests but checks no signature.

--config is a JSON file: {"connectors": {"c-...": {"url": "sftp://127.0.0.1:2222",
"trusted_host_keys": ["ssh-ed25519 AAAA..."], "user": "acme", "password": "...",
"status": "ACTIVE", "as2": false}}}. Failure codes are this emulator's own (the service
documents no list): REMOTE_PATH_NOT_FOUND, REMOTE_PERMISSION_DENIED, HOST_KEY_NOT_TRUSTED,
AUTHENTICATION_FAILED, CONNECTION_ERROR, SEND_FILE_NOT_FOUND, UNKNOWN_ERROR.
--move-delay SECONDS holds each move back, so that a client sees moves still in flight.
Every operation is appended to --log, one JSON object a line. Prints "ready" once listening.
"""

import argparse
import asyncio
import json
import posixpath
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncssh

ACCOUNT = "123456789012"


class ApiError(Exception):
    def __init__(self, kind, message, status=400):
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--s3-endpoint", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--move-delay", type=float, default=0.0)
    args = ap.parse_args()

    connectors = json.load(open(args.config))["connectors"]
    log_file = open(args.log, "a", buffering=1)
    log_lock = threading.Lock()
    transfers = {}  # transfer id -> list of result dicts
    state_lock = threading.Lock()

    def event(**fields):
        fields["t"] = time.time()
        with log_lock:
            log_file.write(json.dumps(fields) + "\n")

    def s3_url(path):
        bucket, _, key = path.lstrip("/").partition("/")
        return f"{args.s3_endpoint.rstrip('/')}/{bucket}/{urllib.parse.quote(key)}"

    def s3_request(path, method="GET", data=None, headers=None):
        day = time.strftime("%Y%m%d", time.gmtime())
        auth = f"AWS4-HMAC-SHA256 Credential=testing/{day}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={'0' * 64}"
        req = urllib.request.Request(s3_url(path), data=data, method=method, headers={"Authorization": auth, **(headers or {})})
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.read()

    def s3_get(path):
        return s3_request(path)

    def s3_put(path, data):
        s3_request(path, "PUT", data, {"Content-Type": "application/json"})

    def connector(cid):
        c = connectors.get(cid)
        if c is None:
            raise ApiError("ResourceNotFoundException", f"Unknown connector: {cid}")
        return c

    def trusted_keys(c):
        keys = []
        for line in c.get("trusted_host_keys", []):
            tokens = line.split()
            # `ssh-keyscan` lines start with the host name.
            if len(tokens) >= 3 and not tokens[0].startswith(("ssh-", "ecdsa-", "sk-")):
                tokens = tokens[1:]
            keys.append(asyncssh.import_public_key(" ".join(tokens[:2])))
        return keys

    async def sftp_session(c):
        url = urllib.parse.urlsplit(c["url"])
        conn = await asyncio.wait_for(
            asyncssh.connect(
                url.hostname,
                url.port or 22,
                username=c["user"],
                password=c.get("password"),
                client_keys=None,
                known_hosts=(trusted_keys(c), [], []),
            ),
            timeout=20,
        )
        return conn, await conn.start_sftp_client()

    def failure(exc):
        if isinstance(exc, (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath)):
            return "REMOTE_PATH_NOT_FOUND", str(exc)
        if isinstance(exc, asyncssh.SFTPPermissionDenied):
            return "REMOTE_PERMISSION_DENIED", str(exc)
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return "HOST_KEY_NOT_TRUSTED", str(exc)
        if isinstance(exc, asyncssh.PermissionDenied):
            return "AUTHENTICATION_FAILED", str(exc)
        if isinstance(exc, urllib.error.HTTPError) and exc.code == 404:
            return "SEND_FILE_NOT_FOUND", "the file is not in S3"
        if isinstance(exc, (OSError, asyncssh.Error, asyncio.TimeoutError)):
            return "CONNECTION_ERROR", str(exc) or type(exc).__name__
        return "UNKNOWN_ERROR", f"{type(exc).__name__}: {exc}"

    def background(fn):
        threading.Thread(target=lambda: asyncio.run(fn()), daemon=True).start()

    def start_file_transfer(body):
        cid = body.get("ConnectorId", "")
        c = connector(cid)
        paths = body.get("SendFilePaths") or []
        remote_dir = body.get("RemoteDirectoryPath")
        if not 1 <= len(paths) <= 10 or remote_dir is None:
            raise ApiError("InvalidRequestException", "SendFilePaths (1 to 10) and RemoteDirectoryPath are required")
        tid = str(uuid.uuid4())
        results = [{"FilePath": p, "StatusCode": "QUEUED"} for p in paths]
        with state_lock:
            transfers[(cid, tid)] = results

        async def run():
            try:
                conn, sftp = await sftp_session(c)
            except Exception as exc:
                code, message = failure(exc)
                with state_lock:
                    for r in results:
                        r.update(StatusCode="FAILED", FailureCode=code, FailureMessage=message)
                event(op="transfer", transfer_id=tid, ok=False, code=code)
                return
            async with conn:
                for r in results:
                    with state_lock:
                        r["StatusCode"] = "IN_PROGRESS"
                    target = posixpath.join(remote_dir, posixpath.basename(r["FilePath"]))
                    try:
                        data = s3_get(r["FilePath"])
                        async with sftp.open(target, "wb") as f:
                            await f.write(data)
                        with state_lock:
                            r["StatusCode"] = "COMPLETED"
                        event(op="transfer", transfer_id=tid, path=target, size=len(data), ok=True)
                    except Exception as exc:
                        code, message = failure(exc)
                        with state_lock:
                            r.update(StatusCode="FAILED", FailureCode=code, FailureMessage=message)
                        event(op="transfer", transfer_id=tid, path=target, ok=False, code=code)

        background(run)
        event(op="StartFileTransfer", connector=cid, transfer_id=tid, paths=paths, remote_directory=remote_dir)
        return {"TransferId": tid}

    def list_file_transfer_results(body):
        cid, tid = body.get("ConnectorId", ""), body.get("TransferId", "")
        connector(cid)
        with state_lock:
            results = transfers.get((cid, tid))
            if results is None:
                raise ApiError("ResourceNotFoundException", f"Unknown transfer: {tid}")
            return {"FileTransferResults": [dict(r) for r in results]}

    def start_remote_move(body):
        cid = body.get("ConnectorId", "")
        c = connector(cid)
        source, target = body.get("SourcePath", ""), body.get("TargetPath", "")
        if not source.startswith("/") or not target.startswith("/"):
            raise ApiError("InvalidRequestException", "SourcePath and TargetPath must be absolute")
        mid = str(uuid.uuid4())

        async def run():
            await asyncio.sleep(args.move_delay)
            try:
                conn, sftp = await sftp_session(c)
                async with conn:
                    await sftp.posix_rename(source, target)
                event(op="move", move_id=mid, source=source, target=target, ok=True)
            except Exception as exc:
                event(op="move", move_id=mid, source=source, target=target, ok=False, code=failure(exc)[0])

        background(run)
        event(op="StartRemoteMove", connector=cid, move_id=mid, source=source, target=target)
        return {"MoveId": mid}

    def start_directory_listing(body):
        cid = body.get("ConnectorId", "")
        c = connector(cid)
        remote_dir, output_dir = body.get("RemoteDirectoryPath"), body.get("OutputDirectoryPath")
        if not remote_dir or not output_dir:
            raise ApiError("InvalidRequestException", "RemoteDirectoryPath and OutputDirectoryPath are required")
        max_items = int(body.get("MaxItems") or 1000)
        lid = str(uuid.uuid4())
        name = f"{cid}-{lid}.json"

        async def run():
            try:
                conn, sftp = await sftp_session(c)
                async with conn:
                    entries = [e for e in await sftp.readdir(remote_dir) if e.filename not in (".", "..")]
                files, paths = [], []
                for e in entries[:max_items]:
                    full = posixpath.join(remote_dir, e.filename)
                    if e.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
                        paths.append({"path": full})
                    else:
                        item = {"filePath": full}
                        if e.attrs.size is not None:
                            item["size"] = e.attrs.size
                        if e.attrs.mtime is not None:
                            item["modifiedTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.attrs.mtime))
                        files.append(item)
                listing = {"files": files, "paths": paths, "truncated": len(entries) > max_items}
                s3_put(posixpath.join(output_dir, name), json.dumps(listing).encode())
                event(op="listing", listing_id=lid, files=[f["filePath"] for f in files], ok=True)
            except Exception as exc:
                event(op="listing", listing_id=lid, ok=False, code=failure(exc)[0])

        background(run)
        event(op="StartDirectoryListing", connector=cid, listing_id=lid, remote_directory=remote_dir)
        return {"ListingId": lid, "OutputFileName": name}

    def describe_connector(body):
        cid = body.get("ConnectorId", "")
        c = connector(cid)
        described = {
            "Arn": f"arn:aws:transfer:us-east-1:{ACCOUNT}:connector/{cid}",
            "ConnectorId": cid,
            "Url": c["url"],
            "AccessRole": f"arn:aws:iam::{ACCOUNT}:role/egress-connector",
            "Status": c.get("status", "ACTIVE"),
            "EgressType": "SERVICE_MANAGED",
        }
        if c.get("as2"):
            described["As2Config"] = {"LocalProfileId": "p-0123456789abcdef0", "PartnerProfileId": "p-0123456789abcdef1"}
        else:
            described["SftpConfig"] = {
                "UserSecretId": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{cid}",
                "TrustedHostKeys": c.get("trusted_host_keys", []),
            }
        event(op="DescribeConnector", connector=cid)
        return {"Connector": described}

    operations = {
        "DescribeConnector": describe_connector,
        "StartFileTransfer": start_file_transfer,
        "ListFileTransferResults": list_file_transfer_results,
        "StartRemoteMove": start_remote_move,
        "StartDirectoryListing": start_directory_listing,
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, status, doc):
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            target = self.headers.get("X-Amz-Target", "")
            op = target.partition(".")[2] if target.startswith("TransferService.") else ""
            try:
                if op not in operations:
                    raise ApiError("UnknownOperationException", f"operation not emulated: {target!r}")
                body = json.loads(raw or b"{}")
                self.answer(200, operations[op](body))
            except ApiError as e:
                self.answer(e.status, {"__type": e.kind, "Message": e.message})
            except Exception as e:  # a bug here must show, not hang the client
                self.answer(500, {"__type": "InternalServiceError", "Message": f"{type(e).__name__}: {e}"})

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
