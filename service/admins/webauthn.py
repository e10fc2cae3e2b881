"""WebAuthn ceremonies for admins (py_webauthn), and the rules for what an admin key may be.

No Flask here: plain values in, result dataclasses out, one exception type
(`WebAuthnRefused`) whose `code` says why, for the journal.
"""

import dataclasses
import hashlib
import json
import logging
import secrets
import uuid
from datetime import datetime, timedelta

import itsdangerous
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

CHALLENGE_SECONDS = 120
FIDO_AAGUID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
NOT_VERIFIED = "the security key's response did not verify"

log = logging.getLogger(__name__)


class WebAuthnRefused(Exception):
    """A WebAuthn response was refused; `code` names the reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class KeyRules:
    """What an admin key may be (GATEHOUSE_WEBAUTHN_*)."""

    rp_id: str
    rp_name: str
    origins: tuple[str, ...]
    device_bound: bool = False
    roots_pem: tuple[bytes, ...] = ()
    aaguids: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class NewKey:
    """A verified registration, with what the journal and the console show about the key."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    fmt: str
    attested: bool
    backup_eligible: bool
    backed_up: bool
    user_verified: bool
    transports: tuple[str, ...]

    @property
    def kind(self) -> str:
        return describe_kind(self.backup_eligible, self.attested)


@dataclasses.dataclass(frozen=True)
class Assertion:
    """A verified assertion: which key, and its new counter."""

    credential_id: bytes
    sign_count: int


def describe_kind(backup_eligible: bool, attested: bool) -> str:
    """The console's words for a key."""
    if backup_eligible:
        return "synced passkey"
    return "attested security key" if attested else "device-bound key"


def body_hash(params) -> str:
    """SHA-256 of the canonical JSON of an action's parameters (sorted keys, no spaces)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def registration_options(rules: KeyRules, *, user_handle: bytes, email: str, display_name: str | None,
                         exclude: list[bytes], challenge: bytes) -> dict:
    """Options for navigator.credentials.create(), asking for direct attestation."""
    options = generate_registration_options(
        rp_id=rules.rp_id, rp_name=rules.rp_name, user_id=user_handle, user_name=email,
        user_display_name=display_name or email, challenge=challenge, timeout=CHALLENGE_SECONDS * 1000,
        attestation=AttestationConveyancePreference.DIRECT,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude])
    return json.loads(options_to_json(options))


def authentication_options(rules: KeyRules, *, allow: list[bytes], challenge: bytes) -> dict:
    """Options for navigator.credentials.get(), user verification required."""
    options = generate_authentication_options(
        rp_id=rules.rp_id, challenge=challenge, timeout=CHALLENGE_SECONDS * 1000,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in allow],
        user_verification=UserVerificationRequirement.REQUIRED)
    return json.loads(options_to_json(options))


def _login_signer(key: bytes) -> itsdangerous.TimestampSigner:
    return itsdangerous.TimestampSigner(key, salt="gatehouse.webauthn.login")


def login_challenge(key: bytes) -> bytes:
    """A sign-in challenge that needs no row: random, with its time, signed with the app's key."""
    return _login_signer(key).sign(secrets.token_urlsafe(24))


def check_login_challenge(key: bytes, challenge: bytes) -> datetime:
    """When a sign-in challenge we signed stops being good; WebAuthnRefused if not ours or too old."""
    try:
        _, signed_at = _login_signer(key).unsign(challenge, max_age=CHALLENGE_SECONDS, return_timestamp=True)
    except itsdangerous.SignatureExpired:
        raise WebAuthnRefused("webauthn_expired", "the challenge expired") from None
    except itsdangerous.BadData:
        raise WebAuthnRefused("webauthn_replay", "unknown, used or expired challenge") from None
    return signed_at + timedelta(seconds=CHALLENGE_SECONDS)


def challenge_of(response: dict) -> bytes:
    """The challenge a browser response answers (read before verifying, to find its record)."""
    try:
        return parse_client_data_json(base64url_to_bytes(response["response"]["clientDataJSON"])).challenge
    except Exception:  # any malformed shape is the same refusal
        raise WebAuthnRefused("webauthn_malformed", "the WebAuthn response is malformed") from None


def credential_id_of(response: dict) -> bytes:
    try:
        return parse_authentication_credential_json(response).raw_id
    except Exception:
        raise WebAuthnRefused("webauthn_malformed", "the WebAuthn response is malformed") from None


def verify_registration(rules: KeyRules, response: dict, *, challenge: bytes) -> NewKey:
    """Verify a registration and apply the key rules; raise WebAuthnRefused."""
    try:
        credential = parse_registration_credential_json(response)
        roots = {fmt: list(rules.roots_pem) for fmt in AttestationFormat} if rules.roots_pem else None
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rules.rp_id,
            expected_origin=list(rules.origins), require_user_verification=True,
            pem_root_certs_bytes_by_fmt=roots)
    except WebAuthnRefused:
        raise
    except Exception as e:  # py_webauthn's errors are not one tree (InvalidBackupFlags, ValueError, ...)
        raise _not_verified("registration", e) from None
    key = NewKey(
        credential_id=verified.credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count, aaguid=str(uuid.UUID(verified.aaguid)),
        fmt=str(getattr(verified.fmt, "value", verified.fmt)),
        attested=False, backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up, user_verified=verified.user_verified,
        transports=tuple(str(getattr(t, "value", t)) for t in (credential.response.transports or [])))
    return _apply_rules(rules, key, verified.attestation_object)


def _not_verified(what: str, error: Exception) -> WebAuthnRefused:
    """py_webauthn's text (it names the expected origins and RP ID) goes to the log, not to the client."""
    log.warning("WebAuthn %s refused: %s", what, error, extra={"fields": {"webauthn_error": type(error).__name__}})
    return WebAuthnRefused("webauthn_invalid", NOT_VERIFIED)


def _apply_rules(rules: KeyRules, key: NewKey, attestation_object: bytes) -> NewKey:
    if rules.device_bound and key.backup_eligible:
        raise WebAuthnRefused(
            "webauthn_synced_key", "this key can be synced (a passkey); admins need a device-bound key"
        )
    if rules.roots_pem:
        _require_attestation_chain(attestation_object, key.aaguid)
        key = dataclasses.replace(key, attested=True)
    if rules.aaguids and key.aaguid not in rules.aaguids:
        raise WebAuthnRefused("webauthn_aaguid", f"authenticator model {key.aaguid} is not on the allow-list")
    return key


def _require_attestation_chain(attestation_object: bytes, aaguid: str) -> None:
    """py_webauthn checked the chain against our roots when there is one; demand that there is.

    It accepts 'none' and packed self-attestation even with roots configured, and does
    not enforce the FIDO rules on the attestation certificate (WebAuthn §8.2.1).
    """
    statement = parse_attestation_object(attestation_object)
    fmt = getattr(statement.fmt, "value", statement.fmt)
    if fmt == "none" or not statement.att_stmt.x5c:
        raise WebAuthnRefused("webauthn_unattested", f"attestation '{fmt}' without a certificate chain is not accepted")
    leaf = x509.load_der_x509_certificate(statement.att_stmt.x5c[0])
    if fmt == "packed":
        ou = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        basic = leaf.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        if ou != ["Authenticator Attestation"] or basic.ca:
            raise WebAuthnRefused("webauthn_unattested", "the attestation certificate breaks the FIDO rules")
        try:
            ext = leaf.extensions.get_extension_for_oid(FIDO_AAGUID_OID).value.value
        except x509.ExtensionNotFound:
            return
        if ext[2:] != uuid.UUID(aaguid).bytes:
            raise WebAuthnRefused("webauthn_unattested", "the attestation certificate names another AAGUID")


def verify_assertion(rules: KeyRules, response: dict, *, challenge: bytes, public_key: bytes,
                     stored_count: int) -> Assertion:
    """Verify an assertion: origin, RP ID, UP, UV, challenge, signature, then the counter."""
    try:
        verified = verify_authentication_response(
            credential=response, expected_challenge=challenge, expected_rp_id=rules.rp_id,
            expected_origin=list(rules.origins), credential_public_key=public_key,
            credential_current_sign_count=0, require_user_verification=True)
    except Exception as e:
        raise _not_verified("assertion", e) from None
    new = verified.new_sign_count
    # WebAuthn §6.1.1: a counter that does not grow (when either is non-zero) may mean a cloned key.
    if (new or stored_count) and new <= stored_count:
        raise WebAuthnRefused(
            "webauthn_counter", f"sign counter went from {stored_count} to {new}: possible cloned key"
        )
    return Assertion(credential_id=verified.credential_id, sign_count=new)


def b64(data: bytes) -> str:
    return bytes_to_base64url(data)


def unb64(text: str) -> bytes:
    return base64url_to_bytes(text)

