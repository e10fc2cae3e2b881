"""The software authenticator against py_webauthn itself: no Gatehouse code involved."""

import functools
import json
import uuid

import pytest
from cryptography import x509
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
)

from tests.support.softauthn import FIDO_AAGUID_OID, SoftAuthenticator, TestCA, unb64u

RP_ID, ORIGIN = "localhost", "http://localhost:8080"
AAGUID = bytes.fromhex("0123456789abcdef0123456789abcdef")


def _options_dict(options) -> dict:
    """The JSON dict a browser would receive."""
    return json.loads(options_to_json(options))


def register(authenticator, attestation="none", ca=None, roots=None):
    """One full registration ceremony; returns py_webauthn's VerifiedRegistration."""
    options = generate_registration_options(
        rp_id=RP_ID, rp_name="Gatehouse", user_name="alice", user_id=b"user-alice",
        attestation=AttestationConveyancePreference.DIRECT,
    )
    credential = authenticator.register(_options_dict(options), origin=ORIGIN, attestation=attestation, ca=ca)
    return verify_registration_response(
        credential=credential, expected_challenge=options.challenge, expected_rp_id=RP_ID,
        expected_origin=ORIGIN, require_user_verification=True,
        pem_root_certs_bytes_by_fmt={AttestationFormat.PACKED: roots} if roots else None,
    )


def authenticate(authenticator, registered, sign_count, **assert_kwargs):
    """One full authentication ceremony; returns py_webauthn's VerifiedAuthentication."""
    options = generate_authentication_options(
        rp_id=RP_ID, allow_credentials=[PublicKeyCredentialDescriptor(id=registered.credential_id)],
    )
    credential = authenticator.assert_(_options_dict(options), origin=ORIGIN, **assert_kwargs)
    return verify_authentication_response(
        credential=credential, expected_challenge=options.challenge, expected_rp_id=RP_ID,
        expected_origin=ORIGIN, credential_public_key=registered.credential_public_key,
        credential_current_sign_count=sign_count, require_user_verification=True,
    )


@pytest.fixture(scope="module")
def ca():
    return TestCA.create()


@pytest.mark.parametrize("attestation", ["none", "packed-self"])
def test_registration_without_a_ca_verifies(attestation):
    authenticator = SoftAuthenticator(aaguid=AAGUID)
    verified = register(authenticator, attestation)
    assert verified.fmt == (AttestationFormat.NONE if attestation == "none" else AttestationFormat.PACKED)
    assert verified.credential_id in authenticator.credentials
    assert verified.sign_count == 0
    assert verified.user_verified
    assert verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
    assert not verified.credential_backed_up


def test_packed_attestation_chains_to_its_root(ca):
    verified = register(SoftAuthenticator(aaguid=AAGUID), "packed", ca=ca, roots=[ca.root_pem])
    assert verified.fmt == AttestationFormat.PACKED
    assert verified.aaguid == str(uuid.UUID(bytes=AAGUID))


def test_packed_attestation_from_another_ca_is_rejected(ca):
    other = TestCA.create("Other Root")
    with pytest.raises(InvalidRegistrationResponse, match="Certificate chain"):
        register(SoftAuthenticator(aaguid=AAGUID), "packed", ca=ca, roots=[other.root_pem])


def test_expired_attestation_leaf_is_rejected(ca):
    expiring = TestCA(ca.key, ca.cert)
    expiring.issue_leaf = functools.partial(ca.issue_leaf, expired=True)
    with pytest.raises(InvalidRegistrationResponse, match="Certificate chain"):
        register(SoftAuthenticator(aaguid=AAGUID), "packed", ca=expiring, roots=[ca.root_pem])


def test_leaf_meets_fido_packed_requirements(ca):
    _, leaf = ca.issue_leaf(AAGUID)
    ou = leaf.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert [a.value for a in ou] == ["Authenticator Attestation"]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.extensions.get_extension_for_oid(FIDO_AAGUID_OID).value.value == b"\x04\x10" + AAGUID
    assert leaf.issuer == ca.cert.subject


def test_authentication_verifies_and_counts_up():
    authenticator = SoftAuthenticator()
    registered = register(authenticator)
    first = authenticate(authenticator, registered, registered.sign_count)
    second = authenticate(authenticator, registered, first.new_sign_count, counter_step=5)
    assert (first.new_sign_count, second.new_sign_count) == (1, 6)
    assert second.user_verified


def test_backwards_counter_is_rejected():
    authenticator = SoftAuthenticator()
    registered = register(authenticator)
    seen = authenticate(authenticator, registered, 0, counter_step=10).new_sign_count
    authenticator.set_counter(registered.credential_id, 3)
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        authenticate(authenticator, registered, seen)


def test_unchanged_nonzero_counter_is_rejected():
    authenticator = SoftAuthenticator()
    registered = register(authenticator)
    seen = authenticate(authenticator, registered, 0).new_sign_count
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        authenticate(authenticator, registered, seen, counter_step=0)


def test_backup_eligible_is_a_multi_device_credential():
    verified = register(SoftAuthenticator(backup_eligible=True, backup_state=True))
    assert verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    assert verified.credential_backed_up


@pytest.mark.parametrize(
    ("forgery", "message"),
    [
        ({"clientdata_overrides": {"origin": "http://evil.example"}}, "origin"),
        ({"clientdata_overrides": {"type": "webauthn.create"}}, "type"),
        ({"clientdata_overrides": {"challenge": "AAAA"}}, "challenge"),
        ({"rp_id": "evil.example"}, "RP ID"),
    ],
)
def test_forged_assertions_are_rejected(forgery, message):
    authenticator = SoftAuthenticator()
    registered = register(authenticator)
    with pytest.raises(InvalidAuthenticationResponse, match=message):
        authenticate(authenticator, registered, 0, **forgery)


def test_missing_user_verification_is_rejected():
    with pytest.raises(InvalidRegistrationResponse, match="User verification"):
        register(SoftAuthenticator(user_verified=False))


def test_assertion_uses_an_allowed_credential_and_carries_the_user_handle():
    authenticator = SoftAuthenticator()
    first, second = register(authenticator), register(authenticator)
    options = _options_dict(generate_authentication_options(
        rp_id=RP_ID, allow_credentials=[PublicKeyCredentialDescriptor(id=second.credential_id)],
    ))
    credential = authenticator.assert_(options, origin=ORIGIN)
    assert unb64u(credential["rawId"]) == second.credential_id != first.credential_id
    assert unb64u(credential["response"]["userHandle"]) == b"user-alice"
    unknown = _options_dict(generate_authentication_options(
        rp_id=RP_ID, allow_credentials=[PublicKeyCredentialDescriptor(id=b"not held")],
    ))
    with pytest.raises(LookupError):
        authenticator.assert_(unknown, origin=ORIGIN)
