"""Who signs checkpoints: one small interface, a key file (development) and a PKCS#11 token (production).

The key is held outside the database on purpose: whoever can rewrite the
journal must not be able to sign for the rewrite. With PKCS#11 the private key
never leaves the token (generated there, sensitive, not extractable).
"""

import os
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from service.errors import ConfigError
from service.journal import note


class Signer(Protocol):
    kind: str  # 'file' or 'pkcs11', as journal_checkpoints.signer records it
    name: str  # the key name: the checkpoint's origin
    public_key: bytes  # 32 bytes, Ed25519

    def sign(self, message: bytes) -> bytes: ...


def _raw(public) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


class KeyFileSigner:
    """A signed-note private key file ("PRIVATE+KEY+..."), as Go's note.GenerateKey writes them."""

    kind = "file"

    def __init__(self, path: Path, origin: str):
        try:
            name, seed = note.parse_private_key(path.read_text("ascii"))
        except (OSError, UnicodeDecodeError, note.NoteError) as e:
            raise ConfigError("GATEHOUSE_JOURNAL_KEY_FILE", f"{path}: {getattr(e, 'strerror', None) or e}") from None
        if name != origin:
            raise ConfigError("GATEHOUSE_JOURNAL_KEY_FILE",
                              f"{path} is the key of {name!r}, but the journal's origin is {origin!r}")
        self.name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = _raw(self._key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def generate_key_file(path: Path, name: str) -> str:
    """Write a new key file (mode 0600, never over an existing file); its verifier key."""
    note.check_name(name)
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = _raw(key.public_key())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(note.private_key_text(name, public, seed) + "\n")
    return note.verifier_key(name, public)


class Pkcs11Signer:
    """An Ed25519 key pair in a PKCS#11 token (CKM_EDDSA), found by the label of both halves."""

    kind = "pkcs11"

    def __init__(self, module: Path, token: str, label: str, pin: str, origin: str):
        import pkcs11
        from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

        self.name = origin
        self._mechanism = Mechanism.EDDSA
        what = f"PKCS#11 key {label!r} in token {token!r}"
        try:
            self._token = pkcs11.lib(str(module)).get_token(token_label=token)
            self._pin = pin
            with self._token.open(user_pin=pin) as session:
                public = session.get_key(ObjectClass.PUBLIC_KEY, KeyType.EC_EDWARDS, label=label)
                point = bytes(public[Attribute.EC_POINT])
        except (pkcs11.PKCS11Error, RuntimeError) as e:
            raise ConfigError("GATEHOUSE_JOURNAL_PKCS11_KEY", f"{what}: {type(e).__name__} {e}".strip()) from None
        # CKA_EC_POINT is the 32-byte key, as a DER OCTET STRING (04 20 ...) by most tokens or raw by some
        self.public_key = point[2:] if len(point) == 34 and point[:2] == b"\x04\x20" else point
        if len(self.public_key) != 32:
            raise ConfigError("GATEHOUSE_JOURNAL_PKCS11_KEY", f"{what} is not an Ed25519 key")
        self._label = label

    def sign(self, message: bytes) -> bytes:
        from pkcs11 import KeyType, ObjectClass

        with self._token.open(user_pin=self._pin) as session:
            private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label=self._label)
            return bytes(private.sign(message, mechanism=self._mechanism))  # type: ignore[attr-defined]


def configured(settings) -> Signer | None:
    """The signer the settings name (a PKCS#11 module wins over a key file), or None; ConfigError when broken."""
    origin = settings.checkpoint_origin
    if settings.journal_pkcs11_module:
        if not (settings.journal_pkcs11_token and settings.journal_pkcs11_key):
            raise ConfigError("GATEHOUSE_JOURNAL_PKCS11_TOKEN",
                              "a PKCS#11 module needs the token's and the key's label (GATEHOUSE_JOURNAL_PKCS11_KEY)")
        return Pkcs11Signer(settings.journal_pkcs11_module, settings.journal_pkcs11_token,
                            settings.journal_pkcs11_key, settings.journal_pkcs11_pin, origin)
    if settings.journal_key_file:
        return KeyFileSigner(settings.journal_key_file, origin)
    return None


def sign_checkpoint(signer: Signer, size: int, root: bytes) -> str:
    """The signed note of the checkpoint (origin = the signer's key name, tree size, root)."""
    body = note.checkpoint_body(signer.name, size, root)
    return body + "\n" + note.signature_line(signer.name, signer.public_key, signer.sign(body.encode()))
