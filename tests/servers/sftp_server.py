"""An SFTP server for the delivery tests (asyncssh), on loopback.

Serves ROOT as a virtual chroot to one user, who logs in with a password and/or a public key.
The host key is read from HOST_KEY, or generated there (ed25519) when the file does not exist,
so a restarted server presents the same key. Prints "ready" once listening.

Every open, close (with the bytes written through that handle and the lowest offset written)
and rename is appended to the --log file, one JSON object a line, so a test can see what the
server did. --slow-after BYTES makes every write after the first BYTES (counted over the
whole process) sleep, so that a test can kill the server in the middle of an upload.
"""

import argparse
import asyncio
import json
import os
import sys
import time

import asyncssh


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--host-key", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password")
    ap.add_argument("--authorized-key", help="a public key file (OpenSSH format)")
    ap.add_argument("--log", required=True)
    ap.add_argument("--slow-after", type=int, default=None)
    args = ap.parse_args()

    if not os.path.exists(args.host_key):
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(args.host_key)
    log = open(args.log, "a", buffering=1)
    state = {"written": 0}

    def event(**fields):
        fields["t"] = time.time()
        log.write(json.dumps(fields) + "\n")

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username):
            return True

        def password_auth_supported(self):
            return args.password is not None

        def validate_password(self, username, password):
            ok = username == args.user and password == args.password
            event(op="auth", method="password", ok=ok)
            return ok

        def public_key_auth_supported(self):
            return args.authorized_key is not None

        def validate_public_key(self, username, key):
            allowed = asyncssh.read_public_key(args.authorized_key)
            ok = username == args.user and key.public_data == allowed.public_data
            event(op="auth", method="publickey", ok=ok)
            return ok

    class Files(asyncssh.SFTPServer):
        def __init__(self, chan):
            super().__init__(chan, chroot=args.root.encode())

        def open(self, path, pflags, attrs):
            f = super().open(path, pflags, attrs)
            self._meta = getattr(self, "_meta", {})
            self._meta[id(f)] = {"path": path.decode(), "written": 0, "min_offset": None}
            event(op="open", path=path.decode(), pflags=pflags)
            return f

        async def write(self, file_obj, offset, data):
            state["written"] += len(data)
            if args.slow_after is not None and state["written"] > args.slow_after:
                await asyncio.sleep(0.05)
            m = self._meta.get(id(file_obj))
            if m is not None:
                m["written"] += len(data)
                m["min_offset"] = offset if m["min_offset"] is None else min(m["min_offset"], offset)
            return super().write(file_obj, offset, data)

        def close(self, file_obj):
            m = getattr(self, "_meta", {}).pop(id(file_obj), None)
            if m is not None:
                event(op="close", **m)
            return super().close(file_obj)

        def rename(self, oldpath, newpath):
            event(op="rename", old=oldpath.decode(), new=newpath.decode())
            return super().rename(oldpath, newpath)

        def posix_rename(self, oldpath, newpath):
            event(op="posix_rename", old=oldpath.decode(), new=newpath.decode())
            return super().posix_rename(oldpath, newpath)

    async def serve():
        await asyncssh.create_server(
            Server,
            "127.0.0.1",
            args.port,
            server_host_keys=[args.host_key],
            sftp_factory=Files,
            allow_scp=False,
        )
        print("ready", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
