"""Admins and WebAuthn through the real endpoints, with a software authenticator.

Every admin action needs an assertion bound to (admin, action, body); each
refusal is journaled and changes nothing.
"""

import re
import uuid

import psycopg
import pytest

from tests.support.admin import ORIGIN, csrf_of, enroll, make_app, new_enrollment, step_up
from tests.support.cli import db_env, gatehouse
from tests.support.softauthn import SoftAuthenticator, TestCA

YUBIKEY = uuid.UUID("cb69481e-8ff7-4039-93ec-0a2729a154a8").bytes


def count(database, sql):
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute(sql).fetchone()[0]


def refusals(database, code=None):
    with psycopg.connect(database.owner_url) as conn:
        rows = conn.execute("SELECT reasons->0->>'code' FROM journal WHERE outcome = 'refused' ORDER BY seq").fetchall()
    return [r[0] for r in rows if code is None or r[0] == code]


def test_enroll_then_sign_in_again_then_create_a_client(web, database):
    key = SoftAuthenticator()
    r = enroll(web, database, key)
    assert r.status_code == 200 and r.json["redirect"] == "/admin"
    assert "You have 1 key" in web.get("/admin").get_data(as_text=True)
    web.post("/admin/logout", headers={"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)})
    assert web.get("/admin").status_code == 401
    options = web.post("/admin/api/login/begin", headers={"Origin": ORIGIN}).json
    r = web.post("/admin/api/login/finish", json={"assertion": key.assert_(options, origin=ORIGIN)},
                 headers={"Origin": ORIGIN})
    assert r.status_code == 200
    r, _, _ = step_up(web, key, "clients.create", {"name": "vpn-gw", "scopes": ["access:check"]})
    assert r.status_code == 200 and r.json["secret"]
    with psycopg.connect(database.owner_url) as conn:
        detail, actor, request_id = conn.execute(
            "SELECT detail, actor, request_id FROM journal WHERE detail->>'action' = 'clients.create'").fetchone()
        counter = conn.execute("SELECT sign_count FROM webauthn_credentials").fetchone()[0]
    assert actor == "admin:ada@example.com" and request_id == r.headers["X-Request-Id"]
    assert detail["credential_id"] and detail["counter"] == counter == 2  # sign-in 1, action 2
    assert r.json["secret"] not in str(detail)


def test_enrollment_link_is_single_use(web, database):
    token = new_enrollment(database)
    key = SoftAuthenticator()
    options = web.post(f"/admin/api/enroll/{token}/begin", headers={"Origin": ORIGIN}).json
    credential = key.register(options, origin=ORIGIN)
    assert web.post(f"/admin/api/enroll/{token}/finish", json={"credential": credential},
                    headers={"Origin": ORIGIN}).status_code == 200
    assert web.get(f"/admin/enroll/{token}").status_code == 404
    assert web.post(f"/admin/api/enroll/{token}/begin", headers={"Origin": ORIGIN}).status_code == 404


def test_expired_enrollment_link_is_refused(web, database):
    token = new_enrollment(database)
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE enrollments SET expires_at = now() - interval '1 second'")
    assert web.get(f"/admin/enroll/{token}").status_code == 404


def _nothing_created(database):
    assert count(database, "SELECT count(*) FROM api_clients") == 0


def test_assertion_for_one_action_is_refused_for_another(web, database, signed_in):
    r, _, _ = step_up(web, signed_in, "clients.revoke", {"name": "x"}, use_action="clients.create",
                      use_params={"name": "x", "scopes": ["scim"]})
    assert r.status_code == 403 and r.json["code"] == "webauthn_wrong_action"
    _nothing_created(database)
    assert refusals(database, "webauthn_wrong_action")


def test_assertion_for_other_parameters_is_refused(web, database, signed_in):
    r, _, _ = step_up(web, signed_in, "clients.create", {"name": "a", "scopes": ["scim"]},
                      use_params={"name": "a", "scopes": ["scim", "journal:read"]})
    assert r.status_code == 403 and r.json["code"] == "webauthn_wrong_body"
    _nothing_created(database)


def test_the_same_parameters_in_another_key_order_are_the_same_action(web, database, signed_in):
    r, _, _ = step_up(web, signed_in, "clients.create", {"name": "a", "scopes": ["scim"]},
                      use_params={"scopes": ["scim"], "name": "a"})
    assert r.status_code == 200, r.json
    assert count(database, "SELECT count(*) FROM api_clients") == 1


def test_an_action_without_an_assertion_is_refused(web, database, signed_in):
    headers = {"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)}
    r = web.post("/admin/api/clients/create", json={"params": {"name": "x", "scopes": ["scim"]}}, headers=headers)
    assert r.status_code == 403 and r.json["code"] == "webauthn_missing"
    _nothing_created(database)
    assert refusals(database) == ["webauthn_missing"]


def test_replayed_assertion_is_refused(web, database, signed_in):
    r, body, headers = step_up(web, signed_in, "clients.create", {"name": "once", "scopes": ["scim"]})
    assert r.status_code == 200
    again = web.post("/admin/api/clients/create", json=body, headers=headers)
    assert again.status_code == 403 and again.json["code"] == "webauthn_replay"
    assert count(database, "SELECT count(*) FROM api_clients") == 1


def test_expired_challenge_is_refused(web, database, signed_in):
    headers = {"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)}
    params = {"name": "late", "scopes": ["scim"]}
    options = web.post(
        "/admin/api/challenge", json={"action": "clients.create", "params": params}, headers=headers
    ).json
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE webauthn_challenges SET expires_at = now() - interval '1 second'")
    r = web.post("/admin/api/clients/create", headers=headers,
                 json={"params": params, "assertion": signed_in.assert_(options, origin=ORIGIN)})
    assert r.status_code == 403 and r.json["code"] == "webauthn_expired"
    _nothing_created(database)


@pytest.mark.parametrize("forgery", [
    {"origin": "http://evil.example:8080"},
    {"rp_id": "evil.example"},
    {"clientdata_overrides": {"type": "webauthn.create"}},
])
def test_wrong_origin_rp_id_or_type_is_refused(web, database, signed_in, forgery):
    r, _, _ = step_up(web, signed_in, "clients.create", {"name": "f", "scopes": ["scim"]}, **forgery)
    assert r.status_code == 403 and r.json["code"] == "webauthn_invalid"
    _nothing_created(database)
    assert refusals(database, "webauthn_invalid")


def test_counter_going_backwards_is_refused_and_journaled(web, database, signed_in):
    credential_id = next(iter(signed_in.credentials))
    r, _, _ = step_up(web, signed_in, "clients.create", {"name": "ok", "scopes": ["scim"]})
    assert r.status_code == 200
    before = count(database, "SELECT sign_count FROM webauthn_credentials")
    signed_in.set_counter(credential_id, 0)
    r, _, _ = step_up(web, signed_in, "clients.create", {"name": "clone", "scopes": ["scim"]})
    assert r.status_code == 403 and r.json["code"] == "webauthn_counter"
    assert count(database, "SELECT count(*) FROM api_clients") == 1
    assert count(database, "SELECT sign_count FROM webauthn_credentials") == before
    assert refusals(database, "webauthn_counter")


def test_a_counter_that_falls_back_to_zero_is_refused(web, database, signed_in):
    credential_id = next(iter(signed_in.credentials))
    assert step_up(web, signed_in, "clients.create", {"name": "ok", "scopes": ["scim"]})[0].status_code == 200
    signed_in.set_counter(credential_id, 0)
    r, _, _ = step_up(web, signed_in, "clients.create", {"name": "reset", "scopes": ["scim"]}, counter_step=0)
    assert r.status_code == 403 and r.json["code"] == "webauthn_counter"
    assert count(database, "SELECT count(*) FROM api_clients") == 1


@pytest.mark.parametrize("where", ["step_up", "sign_in"])
def test_an_assertion_without_user_verification_is_refused(web, database, signed_in, where):
    from tests.support.softauthn import UV

    signed_in.flags &= ~UV  # the key was verified at enrollment; this touch was not
    if where == "step_up":
        r, _, _ = step_up(web, signed_in, "clients.create", {"name": "uv", "scopes": ["scim"]})
    else:
        stranger = web.application.test_client()
        options = stranger.post("/admin/api/login/begin", headers={"Origin": ORIGIN}).json
        r = stranger.post("/admin/api/login/finish", json={"assertion": signed_in.assert_(options, origin=ORIGIN)},
                          headers={"Origin": ORIGIN})
    assert r.status_code == 403 and r.json["code"] == "webauthn_invalid"
    _nothing_created(database)
    assert count(database, "SELECT count(*) FROM web_sessions") == 1  # the enrollment's only
    assert count(database, "SELECT max(sign_count) FROM webauthn_credentials") == 0


def test_counter_that_stays_zero_is_accepted(web, database):
    key = SoftAuthenticator()
    enroll(web, database, key)
    r, _, _ = step_up(web, key, "clients.create", {"name": "p1", "scopes": ["scim"]}, counter_step=0)
    assert r.status_code == 200


def test_another_admins_key_is_refused(web, database, signed_in):
    other = SoftAuthenticator()
    other_web = web.application.test_client()
    enroll(other_web, database, other, email="bob@example.com")
    headers = {"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)}
    params = {"name": "x", "scopes": ["scim"]}
    options = web.post(
        "/admin/api/challenge", json={"action": "clients.create", "params": params}, headers=headers
    ).json
    options["allowCredentials"] = []
    r = web.post("/admin/api/clients/create", headers=headers,
                 json={"params": params, "assertion": other.assert_(options, origin=ORIGIN)})
    assert r.status_code == 403 and r.json["code"] == "webauthn_unknown_key"
    _nothing_created(database)


@pytest.mark.parametrize("signer", ["own_key", "first_admins_key"])
def test_a_challenge_made_for_another_admin_is_refused(web, database, signed_in, signer):
    """Bob's session answers a challenge Ada asked for: signed with Bob's key, or Ada's assertion replayed."""
    bob, bob_web = SoftAuthenticator(), web.application.test_client()
    assert enroll(bob_web, database, bob, email="bob@example.com").status_code == 200
    params = {"name": "x", "scopes": ["scim"]}
    options = web.post("/admin/api/challenge", json={"action": "clients.create", "params": params},
                       headers={"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)}).json
    if signer == "own_key":
        assertion = bob.assert_({**options, "allowCredentials": []}, origin=ORIGIN)
    else:
        assertion = signed_in.assert_(options, origin=ORIGIN)
    r = bob_web.post("/admin/api/clients/create", json={"params": params, "assertion": assertion},
                     headers={"Origin": ORIGIN, "X-CSRF-Token": csrf_of(bob_web)})
    assert r.status_code == 403 and r.json["code"] == "webauthn_wrong_admin"
    assert "clients.create" not in r.json["detail"]
    _nothing_created(database)
    with psycopg.connect(database.owner_url) as conn:
        actor, what = conn.execute("SELECT actor, detail->>'what' FROM journal WHERE outcome = 'refused'").fetchone()
    assert (actor, what) == ("admin:bob@example.com", "clients.create")
    assert count(database, "SELECT max(sign_count) FROM webauthn_credentials") == 0  # no counter moved


def test_py_webauthn_error_text_goes_to_the_log_and_the_client_gets_a_generic_reason(web, database, signed_in,
                                                                                     caplog):
    r, _, _ = step_up(web, signed_in, "clients.create", {"name": "f", "scopes": ["scim"]},
                      origin="http://evil.example:8080")
    assert r.status_code == 403 and r.json["code"] == "webauthn_invalid"
    assert r.json["detail"] == "the security key's response did not verify"
    assert ORIGIN not in r.get_data(as_text=True)
    with psycopg.connect(database.owner_url) as conn:
        reasons = conn.execute("SELECT reasons::text FROM journal WHERE outcome = 'refused'").fetchone()[0]
    assert ORIGIN not in reasons
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "service.admins.webauthn"]
    assert any("evil.example" in m and ORIGIN in m for m in logged), logged


def test_a_registration_that_does_not_verify_gets_a_generic_reason(web, database, caplog):
    token = new_enrollment(database)
    options = web.post(f"/admin/api/enroll/{token}/begin", headers={"Origin": ORIGIN}).json
    credential = SoftAuthenticator().register(options, origin="http://evil.example:8080")
    r = web.post(f"/admin/api/enroll/{token}/finish", json={"credential": credential}, headers={"Origin": ORIGIN})
    assert r.status_code == 403 and r.json["code"] == "webauthn_invalid"
    assert r.json["detail"] == "the security key's response did not verify"
    assert ORIGIN not in r.get_data(as_text=True)
    assert any(ORIGIN in rec.getMessage() for rec in caplog.records if rec.name == "service.admins.webauthn")
    assert count(database, "SELECT count(*) FROM webauthn_credentials") == 0


@pytest.mark.parametrize("case", ["no_csrf", "wrong_csrf", "foreign_origin", "no_origin"])
def test_console_posts_need_csrf_and_our_origin(web, database, signed_in, case):
    headers = {"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)}
    if case == "no_csrf":
        del headers["X-CSRF-Token"]
    elif case == "wrong_csrf":
        headers["X-CSRF-Token"] = "nope"
    elif case == "foreign_origin":
        headers["Origin"] = "https://evil.example"
    else:
        del headers["Origin"]
    before = count(database, "SELECT count(*) FROM webauthn_challenges")
    r = web.post("/admin/api/challenge", json={"action": "clients.create", "params": {}}, headers=headers)
    assert r.status_code == 403 and r.content_type == "application/problem+json"
    assert count(database, "SELECT count(*) FROM webauthn_challenges") == before
    assert refusals(database)


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"params": {}, "assertion": {"response": 5}}',
                                  b'{"params": {}, "assertion": "x"}'])
def test_malformed_webauthn_json_is_a_clear_4xx(web, database, signed_in, body):
    headers = {"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web), "Content-Type": "application/json"}
    r = web.post("/admin/api/clients/create", data=body, headers=headers)
    assert 400 <= r.status_code < 500 and r.content_type == "application/problem+json"
    _nothing_created(database)


def test_oversized_body_is_413(web, signed_in):
    headers = {"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web), "Content-Type": "application/json"}
    r = web.post("/admin/api/clients/create", data=b'{"params": "' + b"x" * 2_000_000 + b'"}', headers=headers)
    assert r.status_code == 413 and r.content_type == "application/problem+json"


def test_sign_in_with_an_unknown_key_is_refused(web, database, signed_in):
    stranger = SoftAuthenticator()
    options = web.post("/admin/api/login/begin", headers={"Origin": ORIGIN}).json
    stranger.register({"challenge": options["challenge"], "rp": {"id": "localhost", "name": "x"},
                       "user": {"id": "AAAAAAAAAAAAAAAAAAAAAA", "name": "x", "displayName": "x"},
                       "pubKeyCredParams": [{"type": "public-key", "alg": -7}]}, origin=ORIGIN)
    r = web.post("/admin/api/login/finish", json={"assertion": stranger.assert_(options, origin=ORIGIN)},
                 headers={"Origin": ORIGIN})
    assert r.status_code == 403 and r.json["code"] == "webauthn_unknown_key"


def test_second_key_added_and_first_removed(web, database, signed_in):
    spare = SoftAuthenticator()
    r, _, headers = step_up(web, signed_in, "keys.add", {"name": "spare"})
    assert r.status_code == 200
    credential = spare.register(r.json, origin=ORIGIN)
    assert web.post("/admin/api/keys/finish", json={"credential": credential}, headers=headers).status_code == 200
    assert "You have" not in web.get("/admin").get_data(as_text=True)
    first = next(iter(signed_in.credentials))
    from service.admins.webauthn import b64

    r, _, _ = step_up(web, spare, "keys.remove", {"key": b64(first)})
    assert r.status_code == 200
    assert count(database, "SELECT count(*) FROM webauthn_credentials") == 1
    r, _, _ = step_up(web, spare, "keys.remove", {"key": b64(next(iter(spare.credentials)))})
    assert r.status_code == 409  # never the last key


def test_rotate_and_revoke_a_client_from_the_console(web, database, signed_in):
    r, _, _ = step_up(web, signed_in, "clients.create", {"name": "okta", "scopes": ["scim"]})
    old = r.json["secret"]
    r, _, _ = step_up(web, signed_in, "clients.rotate", {"name": "okta"})
    assert r.status_code == 200 and r.json["secret"] != old
    r, _, _ = step_up(web, signed_in, "clients.token", {"name": "okta"})
    assert r.status_code == 200 and r.json["token"]
    r, _, _ = step_up(web, signed_in, "clients.revoke", {"name": "okta"})
    assert r.status_code == 200
    assert count(database, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL") == 0
    with psycopg.connect(database.owner_url) as conn:
        actions = [r[0] for r in conn.execute("SELECT detail->>'action' FROM journal WHERE actor LIKE 'admin:%' "
                                              "AND outcome = 'ok' ORDER BY seq")]
    assert actions[-4:] == ["clients.create", "clients.rotate", "clients.token", "clients.revoke"]


def test_admin_added_from_the_console_gets_an_enrollment_link(web, database, signed_in):
    r, _, _ = step_up(web, signed_in, "admins.add", {"email": "cy@example.com"})
    assert r.status_code == 200
    token = r.json["enrollment_url"].rsplit("/", 1)[1]
    assert r.json["enrollment_url"].startswith(ORIGIN + "/admin/enroll/")
    assert web.get(f"/admin/enroll/{token}").status_code == 200


def test_cli_enroll_prints_a_url_and_journals_the_operator(database):
    done = gatehouse("admin", "enroll", "ops@example.com", env={**db_env(database), "GATEHOUSE_BASE_URL": ORIGIN})
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(re.escape(ORIGIN) + r"/admin/enroll/[\w-]{40,}\n", done.stdout)
    with psycopg.connect(database.owner_url) as conn:
        actor, detail = conn.execute("SELECT actor, detail FROM journal").fetchone()
        token_hashes = conn.execute("SELECT count(*) FROM enrollments").fetchone()[0]
    assert actor.startswith("operator:") and detail == {"action": "admins.enroll", "email": "ops@example.com"}
    assert token_hashes == 1 and done.stdout.strip().rsplit("/", 1)[1] not in str(detail)


# --- attestation policy ----------------------------------------------------------------------


@pytest.fixture
def trusted_ca(tmp_path):
    ca = TestCA.create("Company Keys Root")
    path = tmp_path / "roots.pem"
    path.write_bytes(ca.root_pem)
    return ca, path


def test_packed_attestation_from_a_trusted_ca_is_accepted(settings, database, trusted_ca):
    ca, roots = trusted_ca
    app, services = make_app(settings, database, webauthn_roots=roots, webauthn_device_bound=True,
                             webauthn_aaguids=(str(uuid.UUID(bytes=YUBIKEY)),))
    try:
        r = enroll(app.test_client(), database, SoftAuthenticator(aaguid=YUBIKEY), attestation="packed", ca=ca)
    finally:
        services.close()
    assert r.status_code == 200, r.json
    with psycopg.connect(database.owner_url) as conn:
        fmt, attested, aaguid = conn.execute(
            "SELECT attestation_fmt, attested, aaguid FROM webauthn_credentials"
        ).fetchone()
        detail = conn.execute("SELECT detail FROM journal WHERE detail->>'action' = 'keys.enroll'").fetchone()[0]
    assert (fmt, attested, aaguid) == ("packed", True, uuid.UUID(bytes=YUBIKEY))
    assert detail["kind"] == "attested security key" and detail["aaguid"] == str(uuid.UUID(bytes=YUBIKEY))


@pytest.mark.parametrize("case", ["untrusted_ca", "none", "self", "aaguid_not_listed", "synced"])
def test_attestation_policy_refusals(settings, database, trusted_ca, case):
    ca, roots = trusted_ca
    key = SoftAuthenticator(aaguid=YUBIKEY, backup_eligible=case == "synced")
    register = {"untrusted_ca": dict(attestation="packed", ca=TestCA.create("Elsewhere")),
                "none": dict(attestation="none"), "self": dict(attestation="packed-self"),
                "aaguid_not_listed": dict(attestation="packed", ca=ca),
                "synced": dict(attestation="packed", ca=ca)}[case]
    aaguids = (str(uuid.uuid4()),) if case == "aaguid_not_listed" else (str(uuid.UUID(bytes=YUBIKEY)),)
    app, services = make_app(settings, database, webauthn_roots=roots, webauthn_device_bound=True,
                             webauthn_aaguids=aaguids)
    try:
        r = enroll(app.test_client(), database, key, **register)
    finally:
        services.close()
    assert r.status_code == 403, r.json
    assert count(database, "SELECT count(*) FROM webauthn_credentials") == 0
    assert count(database, "SELECT count(*) FROM enrollments WHERE used_at IS NULL") == 1
    assert refusals(database)


def test_default_policy_accepts_none_attestation_and_synced_passkeys(web, database):
    r = enroll(web, database, SoftAuthenticator(backup_eligible=True, backup_state=True))
    assert r.status_code == 200
    with psycopg.connect(database.owner_url) as conn:
        assert conn.execute("SELECT backup_eligible, backed_up, attested FROM webauthn_credentials").fetchone() == (
            True, True, False)
    assert "synced passkey" in web.get("/admin").get_data(as_text=True)
