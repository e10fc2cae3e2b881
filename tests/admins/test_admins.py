"""Admins added and removed: a removed admin's links, keys, sessions and challenges go with them.

The attacks are played through the real endpoints with a software authenticator;
each test asserts the rows left behind, not only the status codes.
"""

import psycopg

from service.admins import webauthn
from tests.support.admin import ORIGIN, csrf_of, enroll, step_up
from tests.support.softauthn import SoftAuthenticator

MALLORY = "mallory@example.com"
H = {"Origin": ORIGIN}


def _add_admin(web, key, email=MALLORY) -> str:
    r, _, _ = step_up(web, key, "admins.add", {"email": email})
    assert r.status_code == 200, r.json
    return r.json["enrollment_url"].rsplit("/", 1)[1]


def _remove_admin(web, key, email=MALLORY) -> None:
    r, _, _ = step_up(web, key, "admins.remove", {"email": email})
    assert r.status_code == 200, r.json


def _held(database, email=MALLORY) -> dict:
    """What the database holds for one admin: pending links, keys, sessions, challenges."""
    with psycopg.connect(database.owner_url) as conn:
        row = conn.execute(
            "SELECT a.active,"
            " (SELECT count(*) FROM enrollments e WHERE e.admin_id = a.id AND e.used_at IS NULL),"
            " (SELECT count(*) FROM webauthn_credentials c WHERE c.admin_id = a.id),"
            " (SELECT count(*) FROM web_sessions s WHERE s.admin_id = a.id),"
            " (SELECT count(*) FROM webauthn_challenges w WHERE w.admin_id = a.id) "
            "FROM admins a WHERE lower(a.email) = lower(%s)", (email,)).fetchone()
    return dict(zip(("active", "links", "keys", "sessions", "challenges"), row, strict=False))


def _sign_in(client, key):
    options = client.post("/admin/api/login/begin", headers=H).json
    return client.post("/admin/api/login/finish", json={"assertion": key.assert_(options, origin=ORIGIN)}, headers=H)


def _clients(database) -> int:
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute("SELECT count(*) FROM api_clients").fetchone()[0]


def test_the_link_of_a_removed_admin_is_dead_on_every_endpoint(web, database, signed_in):
    token = _add_admin(web, signed_in)
    _remove_admin(web, signed_in)
    assert _held(database) == dict(active=False, links=0, keys=0, sessions=0, challenges=0)
    attacker = web.application.test_client()
    assert attacker.get(f"/admin/enroll/{token}").status_code == 404
    assert attacker.post(f"/admin/api/enroll/{token}/begin", headers=H).status_code == 404
    assert _held(database)["challenges"] == 0


def test_a_registration_begun_before_the_removal_gives_no_key_even_after_a_re_add(web, database, signed_in):
    """The reported attack: register with the old link after the removal, wait to be added again, sign in."""
    token = _add_admin(web, signed_in)
    attacker, key = web.application.test_client(), SoftAuthenticator()
    options = attacker.post(f"/admin/api/enroll/{token}/begin", headers=H).json
    _remove_admin(web, signed_in)
    r = attacker.post(f"/admin/api/enroll/{token}/finish", headers=H,
                      json={"credential": key.register(options, origin=ORIGIN)})
    assert r.status_code == 404 and "gatehouse_session" not in r.headers.get("Set-Cookie", "")
    assert _held(database) == dict(active=False, links=0, keys=0, sessions=0, challenges=0)
    fresh = _add_admin(web, signed_in)  # the same e-mail, added again: a new link and nothing else
    assert fresh != token
    assert _held(database) == dict(active=True, links=1, keys=0, sessions=0, challenges=0)
    r = _sign_in(attacker, key)
    assert r.status_code == 403 and r.json["code"] == "webauthn_unknown_key"
    r = attacker.post("/admin/api/challenge", json={"action": "clients.create", "params": {}}, headers=H)
    assert r.status_code == 401
    assert attacker.post(f"/admin/api/enroll/{token}/begin", headers=H).status_code == 404
    assert _clients(database) == 0


def test_an_admin_deactivated_during_enrollment_gets_no_key(web, database, monkeypatch):
    """The active check runs in the transaction that adds the key, after the link was first checked."""
    real = webauthn.verify_registration

    def verify_then_deactivate(*args, **kwargs):
        verified = real(*args, **kwargs)
        with psycopg.connect(database.owner_url) as conn:  # a removal committing mid-request
            conn.execute("UPDATE admins SET active = false WHERE email = 'ada@example.com'")
        return verified

    monkeypatch.setattr(webauthn, "verify_registration", verify_then_deactivate)
    r = enroll(web, database, SoftAuthenticator())
    assert r.status_code == 404 and "gatehouse_session" not in r.headers.get("Set-Cookie", "")
    assert _held(database, "ada@example.com") == dict(active=False, links=1, keys=0, sessions=0, challenges=0)


def test_re_adding_an_admin_clears_keys_left_from_before(web, database, signed_in):
    """A database that was attacked before the fix: an inactive admin still holding a key, link and session."""
    stale_web, stale_key = web.application.test_client(), SoftAuthenticator()
    assert enroll(stale_web, database, stale_key, email=MALLORY).status_code == 200
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE admins SET active = false WHERE email = %s", (MALLORY,))
        admin_id = conn.execute("SELECT id FROM admins WHERE email = %s", (MALLORY,)).fetchone()[0]
        conn.execute("INSERT INTO enrollments (token_hash, admin_id, created_by, expires_at) "
                     "VALUES (sha256('old'), %s, 'test', now() + interval '1 hour')", (admin_id,))
    _add_admin(web, signed_in)
    assert _held(database) == dict(active=True, links=1, keys=0, sessions=0, challenges=0)
    assert stale_web.get("/admin").status_code == 401
    r = _sign_in(stale_web, stale_key)
    assert r.status_code == 403 and r.json["code"] == "webauthn_unknown_key"


def test_a_challenge_is_handed_out_only_for_an_action_some_view_guards(web, signed_in):
    headers = {"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)}
    for action in ("keys.add", "clients.create", "sync.confirm", "grants.grant", "rules.remove"):
        assert (
            web.post("/admin/api/challenge", json={"action": action, "params": {}}, headers=headers).status_code == 200
        )
    refused = web.post("/admin/api/challenge", json={"action": "journal.rewrite", "params": {}}, headers=headers)
    assert refused.status_code == 400 and "unknown action" in refused.json["detail"]
