"""An SMTP server for the delivery tests (aiosmtpd), on loopback.

Stores each accepted message in the Maildir MAILDIR with aiosmtpd's Mailbox handler (which
adds X-MailFrom and X-RcptTo headers with the envelope). Prints "ready" once listening.

  --reject "550 5.7.1 Relaying denied"   answer every RCPT TO with this reply instead
  --auth USER:PASSWORD                   require AUTH (PLAIN/LOGIN) with these credentials
  --tls-dir DIR                          make a CA and a certificate for 127.0.0.1 in DIR
                                         (DIR/ca.pem is the root to trust) and require STARTTLS
"""

import argparse
import asyncio
import datetime
import ipaddress
import logging
import os
import ssl

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def make_certificates(directory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "egress test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    os.makedirs(directory, exist_ok=True)
    paths = {name: os.path.join(directory, name) for name in ("ca.pem", "cert.pem", "key.pem")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert.pem"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key.pem"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(paths["cert.pem"], paths["key.pem"])
    return context


class Handler(Mailbox):
    def __init__(self, maildir, reject):
        super().__init__(maildir)
        self.reject = reject

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject:
            return self.reject
        envelope.rcpt_tos.append(address)
        return "250 OK"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--reject")
    ap.add_argument("--auth")
    ap.add_argument("--tls-dir")
    args = ap.parse_args()
    # Refused TLS handshakes are part of the tests; aiosmtpd would log each with a traceback.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)

    handler = Handler(args.maildir, args.reject)
    kwargs = {"data_size_limit": 64 * 1024 * 1024}
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode()
            # handled=False: aiosmtpd itself answers a failure with 535.
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(args.tls_dir))
    if args.tls_dir:
        kwargs.update(tls_context=make_certificates(args.tls_dir), require_starttls=True)

    async def serve():
        loop = asyncio.get_running_loop()
        await loop.create_server(lambda: SMTP(handler, hostname="mx.test", **kwargs), "127.0.0.1", args.port)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
