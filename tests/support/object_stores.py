"""Independent helpers for the object-store tests (tests/object_stores.rs), written from the
services' documentation with the standard library and `cryptography` only, so they check the
Rust code rather than share its mistakes.

  azure-get ENDPOINT ACCOUNT KEY CONTAINER BLOB OUT
      GET a blob with a SharedKey signature computed here; body to OUT, then one JSON line
      {"status": ..., "headers": {...}} on stdout.
  azure-head ENDPOINT ACCOUNT KEY CONTAINER BLOB
      The same with HEAD (no body).
  azure-sas ACCOUNT KEY
      An account SAS token (blob service, all resource types, read/write/create/list) valid one
      hour, on stdout.
  service-account DIR TOKEN_URI
      A new RSA key: DIR/key.json (a service-account key file) and DIR/public.pem.
  token-server PORT PUBLIC_PEM TOKEN_URI LOG
      An OAuth token endpoint on 127.0.0.1:PORT that accepts only a JWT-bearer grant whose RS256
      signature verifies with PUBLIC_PEM and whose claims name TOKEN_URI and the storage scope;
      appends each verdict to LOG as a JSON line.
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import sys
import time
import urllib.parse

SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"


def azure_get(endpoint, account, key, container, blob, out, method="GET"):
    url = urllib.parse.urlsplit(endpoint)
    path = url.path.rstrip("/") + "/" + container + "/" + urllib.parse.quote(blob, safe="/")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
    # https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key
    string_to_sign = method + "\n" + "\n" * 11
    string_to_sign += "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    string_to_sign += f"/{account}{path}"
    digest = hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()
    headers["Authorization"] = f"SharedKey {account}:{base64.b64encode(digest).decode()}"
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    with open(out, "wb") as f:
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            f.write(chunk)
    print(json.dumps({"status": resp.status, "headers": {k.lower(): v for k, v in resp.getheaders()}}))


def azure_sas(account, key):
    # https://learn.microsoft.com/rest/api/storageservices/create-account-sas (version 2020-12-06+)
    expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sp, ss, srt, sv = "rwdlacup", "b", "sco", "2021-08-06"
    string_to_sign = "\n".join([account, sp, ss, srt, "", expiry, "", "", sv, "", ""])
    sig = base64.b64encode(hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()).decode()
    print(urllib.parse.urlencode({"sv": sv, "ss": ss, "srt": srt, "sp": sp, "se": expiry, "sig": sig}))


def service_account(out_dir, token_uri):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    doc = {
        "type": "service_account",
        "project_id": "egress-test",
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": "egress-writer@egress-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    with open(os.path.join(out_dir, "key.json"), "w") as f:
        json.dump(doc, f)
    with open(os.path.join(out_dir, "public.pem"), "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_jwt(assertion, public_pem, token_uri):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    head, claims, sig = assertion.split(".")
    header = json.loads(b64url_decode(head))
    if header.get("alg") != "RS256":
        return f"alg {header.get('alg')}"
    public = serialization.load_pem_public_key(public_pem)
    try:
        public.verify(b64url_decode(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return "bad signature"
    c = json.loads(b64url_decode(claims))
    now = time.time()
    if c.get("aud") != token_uri:
        return f"aud {c.get('aud')}"
    if c.get("scope") != SCOPE:
        return f"scope {c.get('scope')}"
    if not (c.get("iat", 0) <= now + 60 and c.get("exp", 0) > now and c["exp"] - c["iat"] <= 3600):
        return "times"
    if not c.get("iss", "").endswith(".iam.gserviceaccount.com"):
        return f"iss {c.get('iss')}"
    return "ok"


def token_server(port, public_path, token_uri, log):
    with open(public_path, "rb") as f:
        public_pem = f.read()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            form = urllib.parse.parse_qs(body)
            if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                verdict = "grant_type"
            else:
                verdict = check_jwt(form.get("assertion", [""])[0], public_pem, token_uri)
            with open(log, "a") as f:
                f.write(json.dumps({"verdict": verdict}) + "\n")
            ok = verdict == "ok"
            answer = {"access_token": "ya29.test-token", "expires_in": 3599, "token_type": "Bearer"} if ok else {"error": "invalid_grant", "error_description": verdict}
            data = json.dumps(answer).encode()
            self.send_response(200 if ok else 400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    http.server.HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"azure-get": azure_get, "azure-head": lambda *a: azure_get(*a, os.devnull, method="HEAD"), "azure-sas": azure_sas, "service-account": service_account, "token-server": token_server}[command](*args)
