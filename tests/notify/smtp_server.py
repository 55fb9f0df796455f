#!/usr/bin/env python3
"""An SMTP server for tests (aiosmtpd): STARTTLS, then AUTH, then it records each message.

    SMTP_TEST_USER=... SMTP_TEST_PASSWORD=... target/notify-python-venv/bin/python \\
        tests/notify/smtp_server.py --cert FILE --key FILE --out FILE [--port N]
    python3 tests/notify/smtp_server.py --make-cert DIR

The first prints `listening on smtp://127.0.0.1:<port>` once it accepts connections and runs
until SIGTERM or SIGINT. The second writes a test CA (DIR/ca.pem, DIR/ca-key.pem) and a server
certificate it signed (DIR/cert.pem, DIR/key.pem: localhost and 127.0.0.1), prints the paths
of cert.pem, key.pem and ca.pem (one a line), and exits; clients trust DIR/ca.pem.
"""

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import ssl
import subprocess
import tempfile
from pathlib import Path

# openssl config for --make-cert. A separate CA and end-entity certificate, because webpki
# (rustls) refuses a CA certificate presented as a server's own. P-256 keys, X.509 v3.
OPENSSL_CONFIG = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Faramesh test CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def make_cert(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    names = ("ca.pem", "ca-key.pem", "cert.pem", "key.pem")
    ca, ca_key, cert, key = (directory / name for name in names)

    def openssl(*args, **kwargs):
        return subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True,
                              **kwargs).stdout

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "openssl.cnf")
        config.write_text(OPENSSL_CONFIG)
        for k in (ca_key, key):
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k)
        openssl("req", "-x509", "-new", "-config", config, "-extensions", "ca", "-key", ca_key,
                "-days", 3650, "-out", ca)
        csr = openssl("req", "-new", "-config", config, "-key", key, "-subj", "/CN=localhost")
        openssl("x509", "-req", "-CA", ca, "-CAkey", ca_key, "-set_serial", secrets.randbits(63),
                "-days", 825, "-extfile", config, "-extensions", "server", "-out", cert, input=csr)
    print(cert, key, ca, sep="\n")


class Recorder:
    """aiosmtpd handler: appends each accepted message to the --out file, as one JSON line."""

    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data  # the LoginPassword (bytes) of a successful AUTH
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": auth.login.decode("utf-8", "replace") if auth is not None else None,
            "tls": session.ssl is not None,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        # Recorded before the 250, so a sender that got its answer finds the line there.
        self.out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.out.flush()
        return "250 OK"


def authenticator(user: bytes, password: bytes):
    from aiosmtpd.smtp import AuthResult

    # Called by aiosmtpd for AUTH PLAIN and LOGIN. handled=False makes it answer a failure with
    # 535 (its default, True, means "already answered": the client would wait for ever).
    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == user and auth_data.password == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


async def serve(args, user: bytes, password: bytes) -> None:
    from aiosmtpd.smtp import SMTP  # only here: --make-cert runs without the venv

    # aiosmtpd's own AUTH code sets its deprecated Session.login_data, which logs a warning
    # to stderr on every login; nothing here reads it.
    logging.getLogger("mail.log").addFilter(lambda record: "login_data" not in record.getMessage())
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    loop = asyncio.get_running_loop()
    handler = Recorder(open(args.out, "a", encoding="utf-8"))
    check = authenticator(user, password)
    # A plain asyncio server rather than aiosmtpd's Controller: the Controller needs a fixed port,
    # and binding port 0 here lets the OS pick a free one without a race with other tests.
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost", loop=loop, tls_context=tls,
                     require_starttls=True, auth_required=True, auth_require_tls=True,
                     authenticator=check),
        host="127.0.0.1", port=args.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on smtp://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    parser.add_argument("--cert", help="the server certificate (PEM)")
    parser.add_argument("--key", help="its private key (PEM)")
    parser.add_argument("--out", help="append one JSON line per message here")
    parser.add_argument("--make-cert", metavar="DIR", type=Path,
                        help="write a test CA and server certificate into DIR, and exit")
    args = parser.parse_args()
    if args.make_cert:
        make_cert(args.make_cert)
        return
    if not (args.cert and args.key and args.out):
        parser.error("--cert, --key and --out are required (or --make-cert DIR)")
    user, password = os.environ.get("SMTP_TEST_USER"), os.environ.get("SMTP_TEST_PASSWORD")
    if not user or not password:
        parser.error("SMTP_TEST_USER and SMTP_TEST_PASSWORD must be set")
    asyncio.run(serve(args, user.encode(), password.encode()))


if __name__ == "__main__":
    main()
