"""C2SP signed-note and tlog-checkpoint: the text a checkpoint is, its Ed25519 signature line, its keys.

Pure (no I/O). The formats are the ones Go's golang.org/x/mod/sumdb/note reads:
- a checkpoint body: "<origin>\\n<tree size>\\n<base64 root hash>\\n";
- a note: the body, an empty line, then signature lines
  "— <key name> <base64(key id (4 bytes) || signature)>\\n";
- key id: the first 4 bytes of SHA-256(key name || "\\n" || 0x01 || public key), 0x01 being Ed25519;
- a verifier key: "<name>+<key id hex>+<base64(0x01 || public key)>";
- a key file (development): "PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || 32-byte seed)>".
"""

import base64
import binascii
import dataclasses
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519 = 0x01
DASH = "\u2014"
_NAME = re.compile(r"^[^\s+]+$")  # no spaces, no plus signs (signed-note §key names)
_SIGNATURE = re.compile(rf"^{DASH} (\S+) ([A-Za-z0-9+/=]+)$")


class NoteError(ValueError):
    """A note, checkpoint or key that is malformed or does not verify."""


def check_name(name: str) -> str:
    if not _NAME.match(name) or not name.isprintable():
        raise NoteError(f"{name!r} is no key name (printable, no spaces, no '+')")
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    return f"{name}+{key_id(name, public_key).hex()}+{base64.b64encode(bytes([ED25519]) + public_key).decode()}"


def private_key_text(name: str, public_key: bytes, seed: bytes) -> str:
    return (f"PRIVATE+KEY+{name}+{key_id(name, public_key).hex()}+"
            f"{base64.b64encode(bytes([ED25519]) + seed).decode()}")


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not base64") from None


def parse_private_key(text: str) -> tuple[str, bytes]:
    """(name, 32-byte seed) from a key file's text."""
    parts = text.strip().split("+", 4)  # base64 may hold '+'
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("not a signed-note private key (PRIVATE+KEY+name+id+key)")
    raw = _b64(parts[4], "the key")
    if len(raw) != 33 or raw[0] != ED25519:
        raise NoteError("not an Ed25519 private key")
    return check_name(parts[2]), raw[1:]


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """(name, public key) from a verifier key, checking its key id."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("not a verifier key (name+id+key)")
    raw = _b64(parts[2], "the verifier key")
    if len(raw) != 33 or raw[0] != ED25519:
        raise NoteError("not an Ed25519 verifier key")
    name = check_name(parts[0])
    if key_id(name, raw[1:]).hex() != parts[1].lower():
        raise NoteError("the verifier key's id does not match its name and key")
    return name, raw[1:]


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def signature_line(name: str, public_key: bytes, signature: bytes) -> str:
    return f"{DASH} {name} {base64.b64encode(key_id(name, public_key) + signature).decode()}\n"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str  # the whole signed note


def open_checkpoint(text: str, name: str, public_key: bytes) -> Checkpoint:
    """Parse a signed checkpoint and verify its signature by the key (name, public_key); NoteError otherwise."""
    body, sep, signatures = text.partition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("not a signed note (a body, an empty line, signature lines)")
    body += "\n"
    wanted = key_id(name, public_key)
    verified = False
    for line in signatures[:-1].split("\n"):
        match = _SIGNATURE.match(line)
        if not match:
            raise NoteError(f"malformed signature line {line[:80]!r}")
        raw = _b64(match.group(2), "a signature")
        if match.group(1) != name or raw[:4] != wanted:
            continue  # another signer's (a witness's) line
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(raw[4:], body.encode())
        except InvalidSignature:
            raise NoteError(f"the signature by {name} does not verify") from None
        verified = True
    if not verified:
        raise NoteError(f"no signature by {name}+{wanted.hex()}")
    lines = body.split("\n")
    if len(lines) < 4 or not lines[1].isdigit() or not lines[0]:
        raise NoteError("not a checkpoint (origin, tree size, root hash)")
    root = _b64(lines[2], "the root hash")
    if len(root) != 32:
        raise NoteError("the root hash is not 32 bytes")
    return Checkpoint(lines[0], int(lines[1]), root, text)
