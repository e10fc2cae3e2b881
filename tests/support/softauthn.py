"""A software WebAuthn authenticator for tests: no browser, no network.

SoftAuthenticator answers py_webauthn's registration and authentication
options (the dicts `options_to_json` produces) with the JSON a browser's
`credential.toJSON()` would send, so the server side can be exercised end to
end.  Credentials are ES256 (P-256).  Attestation can be "none", packed self
attestation, or packed full attestation with a certificate from a TestCA.

    ca = TestCA.create()
    authenticator = SoftAuthenticator(aaguid=AAGUID)
    reg = authenticator.register(options, origin=ORIGIN, attestation="packed", ca=ca)
    auth = authenticator.assert_(request_options, origin=ORIGIN)
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ES256 = -7
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
FIDO_AAGUID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")


def b64u(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """DER ECDSA-SHA256 signature."""
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _cose_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The COSE_Key (EC2, P-256, ES256) of a private key's public half."""
    numbers = key.public_key().public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    return cbor2.dumps({1: 2, 3: ES256, -1: 1, -2: x, -3: y})


def _client_data(kind: str, challenge: str, origin: str, overrides: dict | None = None) -> bytes:
    """clientDataJSON bytes as a browser serialises them."""
    data = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
    data.update(overrides or {})
    return json.dumps(data, separators=(",", ":")).encode()


def _name(**parts: str) -> x509.Name:
    """An X.509 name from keyword parts C, O, OU, CN (in that order)."""
    oids = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME,
            "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in parts.items()])


@dataclass
class TestCA:
    """A self-signed P-256 root that issues FIDO packed attestation leaves."""

    __test__ = False  # not a pytest test class, whatever its name says

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, name: str = "Test Root") -> TestCA:
        """A new root, valid from three years ago for ten years."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(C="US", O="Gatehouse Tests", CN=name)
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1095))
            .not_valid_after(now + datetime.timedelta(days=2555))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def root_pem(self) -> bytes:
        """The root certificate, PEM encoded."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_leaf(self, aaguid: bytes, *, expired: bool = False, vendor: str = "Soft Authn Inc",
                   name: str = "Soft Authenticator") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A (key, certificate) pair meeting the packed attestation certificate requirements."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        start = now - datetime.timedelta(days=730 if expired else 1)
        end = now - datetime.timedelta(days=365) if expired else now + datetime.timedelta(days=365)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(C="US", O=vendor, OU="Authenticator Attestation", CN=name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.UnrecognizedExtension(FIDO_AAGUID_OID, b"\x04\x10" + aaguid), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return key, cert


@dataclass
class Credential:
    """One credential the authenticator holds."""

    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    counter: int = 0

    @property
    def public_key(self) -> bytes:
        """The COSE public key, as a relying party stores it."""
        return _cose_key(self.key)


class SoftAuthenticator:
    """An in-memory ES256 authenticator that speaks py_webauthn's JSON."""

    def __init__(self, *, aaguid: bytes = bytes(16), backup_eligible: bool = False, backup_state: bool = False,
                 user_verified: bool = True, user_present: bool = True, attachment: str = "cross-platform"):
        """Fix the AAGUID, the flags every response carries, and the reported attachment."""
        if len(aaguid) != 16:
            raise ValueError("an AAGUID is 16 bytes")
        self.aaguid = aaguid
        self.flags = ((UP if user_present else 0) | (UV if user_verified else 0)
                      | (BE if backup_eligible else 0) | (BS if backup_state else 0))
        self.attachment = attachment
        self.credentials: dict[bytes, Credential] = {}

    def set_counter(self, credential_id: bytes, value: int) -> None:
        """Set a credential's signature counter, e.g. to make it go backwards."""
        self.credentials[credential_id].counter = value

    def register(self, options: dict, *, origin: str, attestation: str = "none", ca: TestCA | None = None) -> dict:
        """Create a credential for creation options; return the registration JSON."""
        if not any(p.get("alg") == ES256 for p in options.get("pubKeyCredParams", [])):
            raise ValueError("the relying party does not accept ES256")
        rp_id = options["rp"].get("id") or urlsplit(origin).hostname
        excluded = {unb64u(c["id"]) for c in options.get("excludeCredentials", [])}
        if excluded & self.credentials.keys():
            raise ValueError("this authenticator already holds an excluded credential")
        cred = Credential(os.urandom(32), ec.generate_private_key(ec.SECP256R1()), rp_id, unb64u(options["user"]["id"]))
        attested = self.aaguid + len(cred.id).to_bytes(2, "big") + cred.id + cred.public_key
        auth_data = self._auth_data(rp_id, self.flags | AT, cred.counter) + attested
        client_data = _client_data("webauthn.create", options["challenge"], origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        if attestation == "none":
            fmt, statement = "none", {}
        elif attestation == "packed-self":
            fmt, statement = "packed", {"alg": ES256, "sig": _sign(cred.key, signed)}
        elif attestation == "packed":
            if ca is None:
                raise ValueError('attestation "packed" needs a ca')
            leaf_key, leaf_cert = ca.issue_leaf(self.aaguid)
            leaf_der = leaf_cert.public_bytes(serialization.Encoding.DER)
            fmt, statement = "packed", {"alg": ES256, "sig": _sign(leaf_key, signed), "x5c": [leaf_der]}
        else:
            raise ValueError(f"unknown attestation {attestation!r}")
        self.credentials[cred.id] = cred
        attestation_object = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": auth_data})
        response = {"clientDataJSON": b64u(client_data), "attestationObject": b64u(attestation_object)}
        return self._credential_json(cred, response)

    def assert_(self, options: dict, *, origin: str, credential_id: bytes | None = None, counter_step: int = 1,
                clientdata_overrides: dict | None = None, rp_id: str | None = None) -> dict:
        """Sign request options with a held credential; return the authentication JSON.

        `clientdata_overrides` replaces clientDataJSON members (origin, type, challenge);
        `rp_id` replaces the RP ID whose hash goes into authenticatorData.
        """
        cred = self._pick(options, credential_id)
        cred.counter += counter_step
        auth_data = self._auth_data(rp_id or options.get("rpId") or cred.rp_id, self.flags, cred.counter)
        client_data = _client_data("webauthn.get", options["challenge"], origin, clientdata_overrides)
        signature = _sign(cred.key, auth_data + hashlib.sha256(client_data).digest())
        response = {"clientDataJSON": b64u(client_data), "authenticatorData": b64u(auth_data),
                    "signature": b64u(signature), "userHandle": b64u(cred.user_handle)}
        return self._credential_json(cred, response)

    def _pick(self, options: dict, credential_id: bytes | None) -> Credential:
        """The named credential, else the first allowed one held, else any held for the RP ID."""
        if credential_id is not None:
            return self.credentials[credential_id]
        allowed = [unb64u(c["id"]) for c in options.get("allowCredentials", [])]
        for cid in allowed:
            if cid in self.credentials:
                return self.credentials[cid]
        if not allowed:
            for cred in self.credentials.values():
                if cred.rp_id == options.get("rpId", cred.rp_id):
                    return cred
        raise LookupError("no usable credential for these options")

    @staticmethod
    def _auth_data(rp_id: str, flags: int, counter: int) -> bytes:
        """rpIdHash || flags || signCount, without attested credential data."""
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + counter.to_bytes(4, "big")

    def _credential_json(self, cred: Credential, response: dict) -> dict:
        """Wrap a response the way PublicKeyCredential.toJSON() does."""
        return {"id": b64u(cred.id), "rawId": b64u(cred.id), "type": "public-key", "response": response,
                "clientExtensionResults": {}, "authenticatorAttachment": self.attachment}
