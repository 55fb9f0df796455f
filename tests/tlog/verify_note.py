"""Checks a signed checkpoint with an Ed25519 implementation independent of the server's
(pyca/cryptography), from the C2SP signed-note and tlog-checkpoint specifications alone.

    verify_note.py VERIFIER_KEY NOTE_FILE

Prints the checkpoint as JSON ({"origin", "size", "root"}) and exits 0 when a signature by the
key verifies; exits 1 naming the problem otherwise.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(why: str) -> None:
    print(why, file=sys.stderr)
    sys.exit(1)


vkey, note_file = sys.argv[1], sys.argv[2]
name, key_id_hex, key_b64 = vkey.strip().split("+", 2)
key = base64.b64decode(key_b64)
if len(key) != 33 or key[0] != 1:
    fail("not an Ed25519 verifier key")
public = key[1:]
key_id = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4]
if key_id.hex() != key_id_hex:
    fail("the key id does not match the key")

note = open(note_file, encoding="utf-8").read()
split = note.rfind("\n\n")
if split < 0:
    fail("no blank line before the signatures")
text, signatures = note[: split + 1], note[split + 2 :]
verified = False
for line in signatures.splitlines():
    if not line.startswith("\u2014 "):
        fail(f"not a signature line: {line!r}")
    signer, blob = line[2:].split(" ", 1)
    raw = base64.b64decode(blob)
    if signer != name or raw[:4] != key_id:
        continue
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
    except InvalidSignature:
        fail("the signature does not verify")
    verified = True
if not verified:
    fail("no signature by this key")

lines = text.split("\n")
origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2])
if len(root) != 32:
    fail("the root hash is not 32 bytes")
print(json.dumps({"origin": origin, "size": size, "root": root.hex()}))
