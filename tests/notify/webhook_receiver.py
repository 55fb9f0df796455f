#!/usr/bin/env python3
"""A webhook receiver for tests: checks Faramesh's X-Faramesh-Signature and records each request.

    WEBHOOK_SECRET=... python3 tests/notify/webhook_receiver.py --out FILE [--port N]
        [--fail-first N] [--secret-env NAME]

Prints `listening on http://127.0.0.1:<port>` once it accepts requests. Python stdlib only.
"""

import argparse
import hashlib
import hmac
import json
import math
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# The reference check, meant to be copied on its own: it needs only hashlib, hmac, re and time.
def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300,
                     now: float | None = None) -> bool:
    """Whether `header` (the X-Faramesh-Signature value) signs `body` (the raw request body)."""
    # The header reads "t=<unix seconds>,v1=<hex>[,v1=<hex>...]": one v1 per secret in use,
    # several while a secret is being rotated. Unknown keys are ignored (future schemes).
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not re.fullmatch(r"[0-9]{1,12}", timestamp) or not signatures:
        return False
    # A signature is only good for `tolerance` seconds either way: a replayed request goes stale.
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False
    # The signed message is "<t>.<body>" over the exact bytes received: never re-serialised JSON.
    message = timestamp.encode() + b"." + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode()
    # Any v1 may match; compare_digest takes the same time wherever the strings differ.
    return any(hmac.compare_digest(expected, sig.encode()) for sig in signatures)



def to_json(value) -> str:
    """The same text as JSON.stringify in webhook_receiver.mjs: no spaces, UTF-8 as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Receiver(BaseHTTPRequestHandler):
    # Set by main(): the secret, the open --out file, and how many valid requests still get 503.
    secret = ""
    out = None
    fail_left = 0
    lock = threading.Lock()  # requests run on threads: one writer and one counter at a time

    def do_POST(self):
        body = self.read_body()
        header = self.headers.get("X-Faramesh-Signature")
        if header is None:
            status, reason = 400, "missing signature"
        elif verify_signature(self.secret, header, body):
            status, reason = 200, None
            with Receiver.lock:
                if Receiver.fail_left > 0:
                    Receiver.fail_left -= 1
                    status, reason = 503, "told to fail"
        # Rejected: tell a stale timestamp from a wrong signature, for the tests that read this.
        elif verify_signature(self.secret, header, body, tolerance=math.inf):
            status, reason = 400, "stale timestamp"
        else:
            status, reason = 400, "bad signature"
        self.answer(status, reason, header, body)

    def do_other(self):
        self.answer(405, "method not allowed", self.headers.get("X-Faramesh-Signature"),
                    self.read_body())

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_other

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status, reason, header, body):
        try:
            parsed = json.loads(body.decode("utf-8"))
        except ValueError:  # not UTF-8 or not JSON (an empty body included)
            parsed = None
        record = {"status": status, "reason": reason,
                  "event": self.headers.get("X-Faramesh-Event"),
                  "delivery": self.headers.get("X-Faramesh-Delivery"),
                  "signature": header, "body": parsed}
        # Recorded before answering, so a sender that got its answer finds the line there.
        with Receiver.lock:
            self.out.write(to_json(record) + "\n")
            self.out.flush()
        reply = to_json({"ok": True} if status == 200 else {"ok": False, "reason": reason}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    def log_message(self, *args):
        pass  # the --out file is the log; keep the test's stderr quiet


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    parser.add_argument("--out", required=True, help="append one JSON line per request here")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N",
                        help="answer 503 to the first N validly signed requests")
    parser.add_argument("--secret-env", default="WEBHOOK_SECRET",
                        help="the environment variable holding the secret")
    args = parser.parse_args()
    secret = os.environ.get(args.secret_env)
    if not secret:
        parser.error(f"the environment variable {args.secret_env} (the secret) is not set")

    Receiver.secret, Receiver.fail_left = secret, args.fail_first
    Receiver.out = open(args.out, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Receiver)
    # SIGTERM ends serve_forever() by SystemExit; server_close() then frees the port.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
