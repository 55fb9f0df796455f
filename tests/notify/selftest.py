"""The steps of tests/notify/selftest: each sends to a fixture and checks what the fixture recorded.

    selftest.py signature                      verify_signature() on fixed and edge cases
    selftest.py webhook URL RECORDS            deliveries to a running webhook receiver
    selftest.py make-cert SMTP_SERVER DIR      smtp_server.py --make-cert DIR
    selftest.py smtp PORT RECORDS CA           mail to a running smtp_server.py

Exits non-zero (an AssertionError) at the first difference. Python stdlib only.
"""

import email.policy
import hashlib
import hmac
import json
import os
import smtplib
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path


def equal(got, want, what):
    assert got == want, f"{what}: got {got!r}, expected {want!r}"


def records(path, count):
    lines = Path(path).read_text().splitlines()
    equal(len(lines), count, f"lines in {path}")
    return [json.loads(line) for line in lines]


def signature():
    sys.path.insert(0, str(Path(__file__).parent))
    from webhook_receiver import verify_signature as verify

    # A vector computed apart from this code (the inputs of the Rust signature unit test):
    #   printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec
    secret, body, now = "whsec", b'{"a":1}', 1700000000
    good = "8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032"
    cases = [
        (f"t={now},v1={good}", now, True),
        (f"t={now}, v1={'0' * 64}, v1={good}", now, True),  # rotation: any v1 is enough
        (f"t={now},v1={good},v0=x,scheme=later", now, True),  # unknown keys are ignored
        (f"t={now},v1={good}", now + 300, True),  # the edge of the tolerance
        (f"t={now},v1={good}", now + 301, False),  # stale
        (f"t={now},v1={good}", now - 301, False),  # from the future
        (f"t={now},v1={good.upper()}", now, False),  # lowercase hex only
        (f"t={now},v1={good[:-2]}", now, False),  # wrong length
        (f"t={now},v1={good}é", now, False),  # not ASCII: refused, not an exception
        (f"t={now}", now, False),
        (f"v1={good}", now, False),
        (f"t=+{now},v1={good}", now, False),
        ("", now, False),
        ("garbage", now, False),
    ]
    for header, at, want in cases:
        equal(verify(secret, header, body, now=at), want, f"verify_signature({header!r}, now={at})")
    equal(verify(secret, f"t={now},v1={good}", body + b" ", now=now), False, "a changed body")
    equal(verify("other", f"t={now},v1={good}", body, now=now), False, "another secret")
    equal(verify(secret, f"t={now},v1={good}", body, tolerance=10**12), True, "a large tolerance")


def sign(secret, t, body):
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def webhook(url, out):
    secret = os.environ["WEBHOOK_SECRET"]
    payload = {"event": "approval.requested", "approval": {"id": "apr_1", "tool": "refund"}}
    body = json.dumps(payload).encode()
    now = int(time.time())
    good = sign(secret, now, body)

    # (signature header or None, body, expected status, expected reason)
    sends = [
        (good, body, 503, "told to fail"),  # --fail-first 1
        (good, body, 200, None),  # the same delivery again
        (f"{sign('old-secret', now, body)},v1={good.split('v1=')[1]}", body, 200, None),
        (sign(secret, now, b"not json"), b"not json", 200, None),
        (sign("forged", now, body), body, 400, "bad signature"),
        (sign(secret, now - 600, body), body, 400, "stale timestamp"),
        (None, body, 400, "missing signature"),
        ("t=soon,v1=nothing", body, 400, "bad signature"),
    ]
    for n, (header, data, status, reason) in enumerate(sends):
        headers = {"Content-Type": "application/json", "X-Faramesh-Event": "approval.requested",
                   "X-Faramesh-Delivery": f"ntf_{n}"}
        if header is not None:
            headers["X-Faramesh-Signature"] = header
        request = urllib.request.Request(f"{url}/hook", data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                got, reply = response.status, json.load(response)
        except urllib.error.HTTPError as error:
            got, reply = error.code, json.load(error)
        want = {"ok": True} if status == 200 else {"ok": False, "reason": reason}
        equal((got, reply), (status, want), f"answer to request {n}")

    recorded = records(out, len(sends))
    for n, (record, (header, data, status, reason)) in enumerate(zip(recorded, sends)):
        equal(record, {"status": status, "reason": reason, "event": "approval.requested",
                       "delivery": f"ntf_{n}", "signature": header,
                       "body": payload if data == body else None}, f"record {n}")


def make_cert(smtp_server, directory):
    # Under the system python3: --make-cert needs no venv.
    printed = subprocess.run(["python3", smtp_server, "--make-cert", directory], check=True,
                             capture_output=True, text=True).stdout.split()
    d = Path(directory)
    equal(printed, [str(d / "cert.pem"), str(d / "key.pem"), str(d / "ca.pem")], "paths printed")
    # What rustls/webpki will ask of them: a server certificate that chains to the CA.
    subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
                    d / "ca.pem", d / "cert.pem"], check=True, capture_output=True)
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", d / "cert.pem"],
                          check=True, capture_output=True, text=True).stdout
    for needed in ("Version: 3", "DNS:localhost, IP Address:127.0.0.1", "CA:FALSE",
                   "TLS Web Server Authentication", "prime256v1"):
        assert needed in text, f"cert.pem lacks {needed!r}:\n{text}"


def smtp(port, out, ca):
    user, password = os.environ["SMTP_TEST_USER"], os.environ["SMTP_TEST_PASSWORD"]
    trust = ssl.create_default_context(cafile=ca)  # checks the name too: 127.0.0.1, localhost
    port = int(port)

    def connect(host="127.0.0.1", tls=True):
        client = smtplib.SMTP(host, port, timeout=10)
        if tls:
            client.starttls(context=trust)
        client.ehlo()  # again after STARTTLS; smtplib's auth() takes a 503 for "no EHLO" as done
        return client

    message = EmailMessage()
    message["From"], message["To"] = "faramesh@example.test", "oncall@example.test"
    message["Subject"] = "Approval requested: refund"
    message.set_content("Approve or deny: apr_1\n")
    message.add_alternative("<p>Approve or deny: <b>apr_1</b></p>\n", subtype="html")
    with connect() as client:
        client.login(user, password)  # smtplib picks AUTH PLAIN
        client.send_message(message)
    with connect("localhost") as client:  # the certificate's DNS name, and AUTH LOGIN
        client.user, client.password = user, password
        client.auth("LOGIN", client.auth_login)
        client.sendmail("faramesh@example.test", ["a@example.test", "b@example.test"],
                        "Subject: second\r\n\r\nplain text\r\n")

    # Refused: a wrong password or user (535), mail without STARTTLS or without AUTH (530).
    for who, secret in ((user, "wrong"), ("someone", password)):
        with connect() as client:
            try:
                client.login(who, secret)
                raise AssertionError(f"login as {who} with {secret} was accepted")
            except smtplib.SMTPAuthenticationError as error:
                equal(error.smtp_code, 535, "a wrong login")
    for tls in (False, True):
        with connect(tls=tls) as client:
            equal(client.has_extn("auth"), tls, "AUTH offered")
            try:
                client.sendmail("faramesh@example.test", ["x@example.test"], "Subject: no\r\n\r\n")
                raise AssertionError(f"mail accepted (tls={tls}) without AUTH")
            except smtplib.SMTPSenderRefused as error:
                equal(error.smtp_code, 530, f"mail without {'AUTH' if tls else 'STARTTLS'}")

    first, second = records(out, 2)
    data = first.pop("data")
    equal(first, {"mail_from": "faramesh@example.test", "rcpt_tos": ["oncall@example.test"],
                  "auth_user": user, "tls": True}, "first message")
    parsed = email.message_from_string(data, policy=email.policy.default)
    equal(parsed["Subject"], "Approval requested: refund", "subject")
    equal([part.get_content_type() for part in parsed.iter_parts()], ["text/plain", "text/html"],
          "parts")
    assert "<b>apr_1</b>" in parsed.get_body(("html",)).get_content(), data
    equal(second, {"mail_from": "faramesh@example.test",
                   "rcpt_tos": ["a@example.test", "b@example.test"], "auth_user": user,
                   "tls": True, "data": "Subject: second\r\n\r\nplain text\r\n"}, "second message")


if __name__ == "__main__":
    step, *args = sys.argv[1:]
    {"signature": signature, "webhook": webhook, "make-cert": make_cert, "smtp": smtp}[step](*args)
