"""Independent reader of delivered email (Python's `email` package).

  read_email.py --maildir DIR    every message of a Maildir
  read_email.py --raw FILE       one raw RFC 5322 message

Prints a JSON list: per message its decoded headers (subject, from, to, cc, bcc, message-id,
and the envelope headers aiosmtpd adds), the text body, and per attachment its file name,
content type, size and SHA-256 of the decoded bytes.
"""

import argparse
import email
import email.policy
import hashlib
import json
import os


def describe(msg):
    headers = {}
    for name in ("subject", "from", "to", "cc", "bcc", "message-id", "x-mailfrom", "x-rcptto", "date"):
        value = msg.get(name)
        if value is not None:
            headers[name] = str(value)
    text = None
    attachments = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment":
            data = part.get_payload(decode=True) or b""
            attachments.append({
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            })
        elif part.get_content_type() == "text/plain" and text is None:
            text = part.get_content()
    return {"headers": headers, "text": text, "attachments": attachments, "defects": [str(d) for d in msg.defects]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--maildir")
    ap.add_argument("--raw")
    args = ap.parse_args()
    out = []
    if args.maildir:
        # A Maildir keeps each message as one file under new/ (or cur/ once read).
        for sub in ("new", "cur"):
            folder = os.path.join(args.maildir, sub)
            for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                with open(os.path.join(folder, name), "rb") as f:
                    out.append(describe(email.message_from_binary_file(f, policy=email.policy.default)))
    if args.raw:
        with open(args.raw, "rb") as f:
            out.append(describe(email.message_from_binary_file(f, policy=email.policy.default)))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
