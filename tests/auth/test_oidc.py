"""OIDC sign-in end to end: a real provider process (oidc-provider-mock), the app, a real PostgreSQL."""

import dataclasses
import html
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
import pytest
import requests
from psycopg.types.json import Json

from service import bootstrap
from service.app import create_app
from service.auth import store as identities
from service.config import load_settings
from service.errors import ConfigError
from tests.support.net import free_port
from tests.support.oidc import authorize, sign_in

BASE = "http://localhost"


@pytest.fixture
def settings(settings, provider):
    return dataclasses.replace(settings, oidc_issuer=provider, oidc_client_id="gatehouse",
                               oidc_client_secret="not-a-secret", base_url=BASE)


def _sql(database, query, params=()):
    with psycopg.connect(database.owner_url) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


def _person(database, user_name, email=None, *, emails=(), active=True, deleted=False, manager=None, roles=()):
    """Insert a person as the schema owner; return the id."""
    (pid,), = _sql(database, """
        INSERT INTO people (user_name, primary_email, emails, active, deleted_at, manager_id, source)
        VALUES (%s, %s, %s::jsonb, %s, CASE WHEN %s THEN now() END, %s, 'manual') RETURNING id::text""",
        (user_name, email, Json([{"value": e} for e in emails]), active, deleted, manager))
    for role in roles:
        _sql(database, "INSERT INTO person_roles (person_id, role, granted_by) VALUES (%s, %s, 'test')",
             (pid, role))
    return pid


@pytest.fixture
def people(database):
    """alice (auditor), bob (manager of dave), carol (hr, inactive), dave (no role), erin (hr, deleted)."""
    ids = {"alice": _person(database, "alice", "alice@example.com", emails=["Alice.Smith@Example.COM"],
                            roles=["auditor"]),
           "bob": _person(database, "Bob", "bob@example.com"),
           "carol": _person(database, "carol", "carol@example.com", active=False, roles=["hr"]),
           "erin": _person(database, "erin", "erin@example.com", active=False, deleted=True, roles=["hr"])}
    ids["dave"] = _person(database, "dave", "dave@example.com", manager=ids["bob"])
    return ids


def _set_cookie(response, name):
    """The Set-Cookie header for `name`, as a lower-cased list of its parts."""
    found = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    assert len(found) == 1, response.headers.getlist("Set-Cookie")
    return [part.strip().lower() for part in found[0].split(";")]


def _csrf(client):
    page = client.get("/me").get_data(as_text=True)
    return html.unescape(re.search(r'name="csrf_token" value="([^"]*)"', page).group(1))


def _journal(database, outcome):
    return _sql(database, "SELECT actor, subject::text, reasons, detail FROM journal "
                          "WHERE kind = 'admin' AND outcome = %s ORDER BY seq", (outcome,))


def _sessions(database):
    return _sql(database, "SELECT person_id::text FROM web_sessions")


def _bindings(database):
    return _sql(database, "SELECT issuer, subject, person_id::text, bound_at, last_seen_at "
                          "FROM person_oidc_identities ORDER BY bound_at, subject")


def _signed_in_as(client):
    return re.search(r"<strong>([^<]*)</strong>", client.get("/me").get_data(as_text=True)).group(1)


@pytest.fixture
def trusting_client(settings, database):
    """A client of an app that trusts the provider's preferred_username (GATEHOUSE_OIDC_TRUST_USERNAME)."""
    services = bootstrap.build(dataclasses.replace(settings, oidc_trust_username=True), database)
    yield create_app(services=services).test_client()
    services.close()


# --- signing in --------------------------------------------------------------------------------


def test_sign_in_by_verified_email(client, provider, database, people):
    r = sign_in(client, provider, "alice-sub", {"email": "ALICE@example.com", "email_verified": True})
    assert r.status_code == 302 and r.location == "/me"
    cookie = _set_cookie(r, "gatehouse_session")
    assert {"httponly", "samesite=lax", "path=/"} <= set(cookie) and "secure" not in cookie
    assert "expires=thu, 01 jan 1970 00:00:00 gmt" in _set_cookie(r, "gatehouse_flow")  # flow state cleared
    page = client.get("/me")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    text = page.get_data(as_text=True)
    assert "<strong>alice</strong>" in text and "auditor" in text and 'action="/logout"' in text
    assert "'none'" in page.headers["Content-Security-Policy"]
    assert _sessions(database) == [(people["alice"],)]
    (actor, subject, reasons, detail), = _journal(database, "ok")
    assert (actor, subject) == ("person:alice", people["alice"])
    assert detail == {"action": "signin", "method": "oidc", "issuer": provider, "sub": "alice-sub",
                      "matched": "email", "bound": True}
    (issuer, subject, person, bound_at, last_seen_at), = _bindings(database)
    assert (issuer, subject, person) == (provider, "alice-sub", people["alice"]) and bound_at == last_seen_at


def test_a_secondary_verified_email_matches(client, provider, people):
    assert (
        sign_in(client, provider, "sub-1", {"email": "alice.smith@example.com", "email_verified": True}).status_code
        == 302
    )
    text = client.get("/me").get_data(as_text=True)
    assert "<strong>alice</strong>" in text and "auditor" in text


# The review's three tokens: each signed in as alice (an auditor) through preferred_username.
ATTACKS = [
    {"email": "attacker@evil.example", "email_verified": True, "preferred_username": "alice"},
    {"email": "alice@example.com", "email_verified": False, "preferred_username": "alice"},
    {"preferred_username": "alice"},
]


@pytest.mark.parametrize("claims", ATTACKS)
def test_preferred_username_alone_never_signs_anyone_in(client, provider, database, people, claims):
    r = sign_in(client, provider, "mallory-sub", claims)
    assert r.status_code == 403 and "gatehouse_session=" not in str(r.headers)
    assert client.get("/me").status_code == 302
    assert _sessions(database) == [] and _journal(database, "ok") == []
    (actor, subject, reasons, detail), = _journal(database, "refused")
    assert (actor, subject, reasons[0]["code"]) == ("anonymous", None, "unknown_person")
    assert detail["sub"] == "mallory-sub" and detail["preferred_username"] == "alice"
    assert _bindings(database) == []


# --- the (iss, sub) binding ----------------------------------------------------------------------


@pytest.mark.parametrize("claims", [
    {"email": "alice@new.example", "email_verified": True},  # her address changed at the provider
    {"email": "bob@example.com", "email_verified": True},  # someone else's, verified: the binding still decides
    {"email": "alice@example.com", "email_verified": False},
    {"preferred_username": "bob"},
    {},
])
def test_a_bound_account_reaches_the_same_person_whatever_its_claims_say(client, provider, database, people,
                                                                         claims):
    sign_in(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    _sql(database, "UPDATE person_oidc_identities SET last_seen_at = now() - interval '1 day'")
    r = sign_in(client, provider, "alice-sub", claims)  # PUT /users/alice-sub, then sign in again
    assert r.status_code == 302 and _signed_in_as(client) == "alice"
    assert _sessions(database) == [(people["alice"],)]  # the first session ended with the second sign-in
    (_, subject, person, bound_at, last_seen_at), = _bindings(database)
    assert (subject, person) == ("alice-sub", people["alice"]) and last_seen_at > bound_at
    first, second = [(actor, detail) for actor, _, _, detail in _journal(database, "ok")]
    assert (first[1]["matched"], first[1]["bound"]) == ("email", True)
    assert second[0] == "person:alice" and (second[1]["matched"], second[1]["bound"]) == ("binding", False)


def test_a_second_account_with_a_bound_persons_email_is_refused(app, client, provider, database, people):
    sign_in(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    other = app.test_client()
    r = sign_in(other, provider, "alice-2", {"email": "Alice.Smith@example.com", "email_verified": True})
    assert r.status_code == 403 and "already linked to another account" in r.get_data(as_text=True)
    assert other.get("/me").status_code == 302 and _sessions(database) == [(people["alice"],)]
    assert [(s, p) for _, s, p, _, _ in _bindings(database)] == [("alice-sub", people["alice"])]
    (actor, subject, reasons, detail), = _journal(database, "refused")
    assert (actor, subject, reasons[0]["code"]) == ("person:alice", people["alice"], "already_bound")
    assert (detail["sub"], detail["bound_sub"], detail["matched"]) == ("alice-2", "alice-sub", "email")


@pytest.mark.parametrize("change", ["active = false", "active = false, deleted_at = now()"])
def test_a_bound_person_who_left_is_refused_not_matched_by_email(app, client, provider, database, people, change):
    sign_in(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    _sql(database, f"UPDATE people SET {change} WHERE id = %s", (people["alice"],))
    r = sign_in(app.test_client(), provider, "alice-sub", {"email": "bob@example.com", "email_verified": True})
    assert r.status_code == 403 and "not active" in r.get_data(as_text=True)
    assert _sessions(database) == [(people["alice"],)]  # only the first; bob was never signed in
    (actor, subject, reasons, detail), = _journal(database, "refused")
    assert (actor, subject, reasons[0]["code"], detail["matched"]) == (
        "person:alice", people["alice"], "inactive_person", "binding")


def test_a_binding_belongs_to_its_issuer(client, provider, database, people):
    sign_in(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    with psycopg.connect(database.app_url) as conn:
        assert identities.find(conn, {"iss": provider, "sub": "alice-sub"}, trust_username=False).how == "binding"
        assert identities.find(conn, {"iss": provider + "/", "sub": "alice-sub"}, trust_username=False).how == "none"
        assert identities.find(conn, {"iss": "https://idp.example", "sub": "alice-sub"},
                               trust_username=False) == identities.Match((), "none")


def test_binding_never_takes_a_bound_person_or_account(database, people):
    with psycopg.connect(database.app_url) as conn:  # as the application role
        assert identities.bind(conn, "https://idp.example", "a", people["alice"]) is True
        assert identities.bind(conn, "https://idp.example", "a", people["alice"]) is False  # a concurrent twin
        with pytest.raises(identities.AlreadyBound):
            identities.bind(conn, "https://idp.example", "b", people["alice"])
        with pytest.raises(identities.AlreadyBound):
            identities.bind(conn, "https://idp.example", "a", people["bob"])
        assert identities.bind(conn, "https://other.example", "a", people["alice"]) is True
        with pytest.raises(psycopg.errors.UniqueViolation):  # the table itself refuses a second account
            conn.execute("INSERT INTO person_oidc_identities (issuer, subject, person_id) VALUES (%s, %s, %s)",
                         ("https://idp.example", "c", people["alice"]))


@pytest.mark.parametrize("statement", [
    "UPDATE person_oidc_identities SET person_id = %(bob)s",
    "UPDATE person_oidc_identities SET subject = 'mallory'",
    "DELETE FROM person_oidc_identities",
])
def test_the_application_role_cannot_rebind_or_unbind(database, people, statement):
    _sql(database, "INSERT INTO person_oidc_identities (issuer, subject, person_id) VALUES ('i', 's', %s)",
         (people["alice"],))
    with psycopg.connect(database.app_url) as conn:
        conn.execute("UPDATE person_oidc_identities SET last_seen_at = now()")  # what sign-in needs
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement, {"bob": people["bob"]})
    assert [(s, p) for _, s, p, _, _ in _bindings(database)] == [("s", people["alice"])]


def test_a_token_whose_sub_is_too_long_is_refused(client, provider, database, people):
    r = sign_in(client, provider, "x" * 256, {"email": "alice@example.com", "email_verified": True})
    assert r.status_code == 400 and "no usable ID token" in r.get_data(as_text=True)
    assert _sessions(database) == [] and _bindings(database) == []
    assert _journal(database, "refused")[0][2][0]["code"] == "no_id_token"


# --- GATEHOUSE_OIDC_TRUST_USERNAME ---------------------------------------------------------------


@pytest.mark.parametrize(("claims", "user"), [
    ({"preferred_username": "BOB"}, "Bob"),
    ({"email": "bob@example.com", "email_verified": False, "preferred_username": "bob"}, "Bob"),
    ({"email": "alice@example.com", "email_verified": True, "preferred_username": "bob"}, "alice"),  # e-mail first
])
def test_a_trusted_username_matches_but_binds_nothing(trusting_client, provider, database, people, claims, user):
    r = sign_in(trusting_client, provider, "sub-1", claims)
    assert r.status_code == 302 and _signed_in_as(trusting_client) == user
    (_, _, _, detail), = _journal(database, "ok")
    matched = "email" if claims.get("email_verified") else "username"
    assert (detail["matched"], detail["bound"]) == (matched, matched == "email")
    assert len(_bindings(database)) == (matched == "email")


def test_a_trusted_username_never_overrides_a_binding(client, trusting_client, provider, database, people):
    sign_in(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    r = sign_in(trusting_client, provider, "mallory-sub", {"preferred_username": "alice"})
    assert r.status_code == 403 and _sessions(database) == [(people["alice"],)]
    (actor, _, reasons, detail), = _journal(database, "refused")
    assert (actor, reasons[0]["code"], detail["matched"]) == ("person:alice", "already_bound", "username")
    r = sign_in(trusting_client, provider, "alice-sub", {"preferred_username": "bob"})  # and the binding wins
    assert r.status_code == 302 and _signed_in_as(trusting_client) == "alice"


@pytest.mark.parametrize(("value", "trusted"), [(None, False), ("true", True), ("off", False)])
def test_trusting_usernames_is_a_setting_off_by_default(value, trusted):
    environ = {} if value is None else {"GATEHOUSE_OIDC_TRUST_USERNAME": value}
    assert load_settings(environ).oidc_trust_username is trusted


def test_a_malformed_trust_setting_is_refused():
    with pytest.raises(ConfigError, match="GATEHOUSE_OIDC_TRUST_USERNAME"):
        load_settings({"GATEHOUSE_OIDC_TRUST_USERNAME": "sometimes"})


def test_https_base_url_makes_every_cookie_secure(settings, database, people, provider):
    services = bootstrap.build(dataclasses.replace(settings, base_url="https://localhost"), database)
    try:
        client = create_app(services=services).test_client()
        requests.put(f"{provider}/users/alice-sub", json={"email": "alice@example.com", "email_verified": True},
                     timeout=5).raise_for_status()
        r = client.get("/login", base_url="https://localhost")
        assert "secure" in _set_cookie(r, "gatehouse_flow")
        assert dict(parse_qsl(urlsplit(r.location).query))["redirect_uri"] == "https://localhost/auth/callback"
        callback = requests.post(r.location, data={"sub": "alice-sub"}, allow_redirects=False,
                                 timeout=5).headers["Location"]
        assert callback.startswith("https://localhost/auth/callback?")
        r = client.get(callback)
        assert r.status_code == 302
        assert {"secure", "httponly", "samesite=lax"} <= set(_set_cookie(r, "gatehouse_session"))
        assert client.get("/me", base_url="https://localhost").status_code == 200
    finally:
        services.close()


# --- refusals ----------------------------------------------------------------------------------


def test_unknown_person_is_refused_and_journaled(client, provider, database, people):
    r = sign_in(client, provider, "zed-sub", {"email": "zed<b>@example.com", "email_verified": True})
    assert r.status_code == 403 and r.content_type.startswith("text/html")
    text = r.get_data(as_text=True)
    assert "no Gatehouse account for zed&lt;b&gt;@example.com" in text and "<b>" not in text
    assert "gatehouse_session=" not in str(r.headers) and _sessions(database) == []
    (actor, subject, reasons, detail), = _journal(database, "refused")
    assert (actor, subject, reasons[0]["code"]) == ("anonymous", None, "unknown_person")
    assert detail["action"] == "signin" and detail["email"] == "zed<b>@example.com" and detail["sub"] == "zed-sub"


@pytest.mark.parametrize(("claims", "who", "code"), [
    ({"email": "carol@example.com", "email_verified": True}, "carol", "inactive_person"),
    ({"email": "erin@example.com", "email_verified": True}, "erin", "inactive_person"),
    ({"email": "dave@example.com", "email_verified": True}, "dave", "no_role"),
])
def test_inactive_deleted_and_roleless_people_are_refused(client, provider, database, people, claims, who, code):
    r = sign_in(client, provider, f"{who}-sub", claims)
    assert r.status_code == 403
    assert _sessions(database) == []
    (actor, subject, reasons, _), = _journal(database, "refused")
    assert (actor, subject, reasons[0]["code"]) == (f"person:{who}", people[who], code)


def test_unverified_email_does_not_match(client, provider, database, people):
    claims = {"email": "alice@example.com", "email_verified": False, "preferred_username": "nobody"}
    r = sign_in(client, provider, "mallory", claims)
    assert r.status_code == 403 and "no Gatehouse account" in r.get_data(as_text=True)
    assert _sessions(database) == [] and _journal(database, "refused")[0][2][0]["code"] == "unknown_person"


def _with_state(url, state):
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), "state": state}
    if state is None:
        del query["state"]
    return parts._replace(query=urlencode(query)).geturl()


@pytest.mark.parametrize("state", ["tampered", None])
def test_tampered_or_missing_state_is_refused(client, provider, database, people, state):
    callback = authorize(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    r = client.get(_with_state(callback, state))
    assert r.status_code == 400 and r.content_type.startswith("text/html")
    assert "Traceback" not in r.get_data(as_text=True) and _sessions(database) == []
    (actor, _, reasons, detail), = _journal(database, "refused")
    assert (actor, reasons[0]["code"], detail["action"]) == ("anonymous", "signin_failed", "signin")
    assert "mismatching_state" in reasons[0]["text"]


def test_callback_without_the_flow_cookie_is_refused(app, client, provider, database, people):
    callback = authorize(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    r = app.test_client().get(callback)  # another browser: a login CSRF attempt
    assert r.status_code == 400 and _sessions(database) == []


def test_provider_denial_is_refused_and_journaled(client, provider, database, people):
    callback = authorize(client, provider, "alice-sub", {}, form={"action": "deny"})
    r = client.get(callback)
    assert r.status_code == 400 and "access_denied" in r.get_data(as_text=True)
    assert _journal(database, "refused")[0][2][0]["code"] == "signin_failed"


def test_unreachable_provider_is_a_502_page(settings, database):
    services = bootstrap.build(dataclasses.replace(settings, oidc_issuer=f"http://127.0.0.1:{free_port()}"), database)
    try:
        r = create_app(services=services).test_client().get("/login")
    finally:
        services.close()
    assert r.status_code == 502 and "cannot be reached" in r.get_data(as_text=True)
    assert _journal(database, "refused")[0][2][0]["code"] == "provider_unreachable"


def test_no_issuer_no_sign_in_routes(settings, database):
    services = bootstrap.build(dataclasses.replace(settings, oidc_issuer=""), database)
    try:
        client = create_app(services=services).test_client()
        assert client.get("/login").status_code == 404 and client.get("/me").status_code == 404
    finally:
        services.close()


# --- the session: /me, logout, expiry ----------------------------------------------------------


def test_me_without_a_session_goes_to_sign_in(client, people):
    r = client.get("/me")
    assert r.status_code == 302 and r.location == "/login"


def test_logout_with_csrf_ends_the_session(client, provider, database, people):
    sign_in(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    r = client.post("/logout", data={"csrf_token": _csrf(client)}, headers={"Origin": BASE})
    assert r.status_code == 200 and "signed out" in r.get_data(as_text=True)
    assert "expires=thu, 01 jan 1970 00:00:00 gmt" in _set_cookie(r, "gatehouse_session")
    assert _sessions(database) == []
    assert [d["action"] for _, _, _, d in _journal(database, "ok")] == ["signin", "signout"]
    assert client.get("/me").status_code == 302


@pytest.mark.parametrize(("csrf", "origin"), [(False, BASE), (True, "https://evil.example"), (True, None)])
def test_logout_without_csrf_or_from_elsewhere_is_refused(client, provider, database, people, csrf, origin):
    sign_in(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    data = {"csrf_token": _csrf(client)} if csrf else {}
    r = client.post("/logout", data=data, headers={"Origin": origin} if origin else {})
    assert r.status_code == 403 and "gatehouse_session=" not in str(r.headers)
    assert client.get("/me").status_code == 200 and _sessions(database) == [(people["alice"],)]
    (actor, _, reasons, detail), = _journal(database, "refused")
    assert actor == "person:alice" and detail["what"] == ("origin" if csrf else "csrf")


def test_logout_by_get_is_not_allowed(client):
    r = client.get("/logout")
    assert r.status_code == 405 and "POST" in r.headers["Allow"]


def test_an_expired_session_no_longer_works(client, provider, database, people):
    sign_in(client, provider, "alice-sub", {"email": "alice@example.com", "email_verified": True})
    assert client.get("/me").status_code == 200
    _sql(database, "UPDATE web_sessions SET expires_at = now() - interval '1 second'")
    r = client.get("/me")
    assert r.status_code == 302 and r.location == "/login"
