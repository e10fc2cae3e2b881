"""Machine clients: the client-credentials token endpoint, bearer tokens, scope guards, the clients CLI."""

import base64
import getpass
from datetime import UTC
from urllib.parse import quote

import psycopg
import pytest
from flask import g, jsonify

from service import openapi
from service.auth.guards import require_scope
from service.auth.principal import SCOPES
from service.clients import store as clients
from service.errors import BadRequest, Conflict, NotFound
from tests.support.cli import db_env, gatehouse


@pytest.fixture
def guarded(app):
    """A test-only route behind require_scope("scim") on this test's app."""

    @app.get("/t/scim")
    @require_scope("scim")
    def scim_probe():
        return jsonify(client=g.principal.name, scopes=sorted(g.principal.scopes))

    return app.test_client()


def _create(database, name="okta", scopes=("scim",)) -> clients.Issued:
    with psycopg.connect(database.app_url) as conn:
        return clients.create(conn, name=name, scopes=scopes, created_by="test")


def _basic(client_id: str, secret: str) -> dict:
    # RFC 6749 §2.3.1: form-urlencode each part, then Basic (RFC 7617).
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def _token(http, client_id: str, secret: str, **form):
    """A client-credentials token request with client_secret_basic."""
    return http.post("/oauth/token", data={"grant_type": "client_credentials", **form},
                     headers=_basic(client_id, secret))


def _pair(issued: clients.Issued) -> tuple[str, str]:
    return issued.client.client_id, issued.secret


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _journal(database) -> list[tuple]:
    with psycopg.connect(database.app_url) as conn:
        return conn.execute("SELECT kind, outcome, actor, reasons, detail FROM journal ORDER BY seq").fetchall()


def test_client_secret_basic_gets_a_bearer_token_that_passes_the_guard(database, services, guarded):
    issued = _create(database, scopes=("scim", "access:check"))
    r = _token(guarded, *_pair(issued))
    assert r.status_code == 200, r.json
    assert r.json["token_type"] == "Bearer" and r.json["expires_in"] == services.settings.token_lifetime
    assert set(r.json["scope"].split()) == {"scim", "access:check"}
    assert r.headers["Cache-Control"] == "no-store"  # RFC 6749 §5.1
    ok = guarded.get("/t/scim", headers=_bearer(r.json["access_token"]))
    assert ok.status_code == 200 and ok.json == {"client": "okta", "scopes": ["access:check", "scim"]}
    assert _journal(database) == []  # issuing and using tokens is not journaled
    with psycopg.connect(database.app_url) as conn:
        kind, lifetime, used = conn.execute(
            "SELECT t.kind, extract(epoch FROM t.expires_at - t.created_at), c.last_used_at IS NOT NULL "
            "FROM api_tokens t JOIN api_clients c ON c.id = t.client_id").fetchone()
    assert (kind, round(lifetime), used) == ("access", services.settings.token_lifetime, True)


def test_client_secret_post_and_a_narrowed_scope(database, guarded):
    issued = _create(database, scopes=("scim", "access:check"))
    r = guarded.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "access:check",
                                           "client_id": issued.client.client_id, "client_secret": issued.secret})
    assert r.status_code == 200 and r.json["scope"] == "access:check"
    refused = guarded.get("/t/scim", headers=_bearer(r.json["access_token"]))
    assert refused.status_code == 403 and refused.content_type == "application/problem+json"
    assert refused.json["code"] == "forbidden" and "scim" in refused.json["detail"]
    (kind, outcome, actor, reasons, detail), = _journal(database)
    assert (kind, outcome, actor, reasons[0]["code"]) == ("admin", "refused", "client:okta", "forbidden")
    assert detail["what"] == "scope:scim"


def test_wrong_secret_is_401_invalid_client_and_journaled(database, client):
    issued = _create(database)
    r = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                    headers=_basic(issued.client.client_id, "not-the-secret"))
    assert r.status_code == 401 and r.json["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"].startswith("Basic ")
    (kind, outcome, actor, reasons, detail), = _journal(database)
    assert (kind, outcome, actor) == ("admin", "refused", f"client:{issued.client.client_id}")
    assert reasons == [{"code": "invalid_client", "text": "wrong client secret"}]
    assert detail["what"] == "oauth:token"


def test_unknown_clients_get_the_same_answer(database, client):
    r = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "gh_nobody",
                                          "client_secret": "x"})
    assert r.status_code == 401 and r.json["error_description"] == "client authentication failed"
    r = client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert r.status_code == 401 and r.json["error"] == "invalid_client"
    odd = [{"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
           {"Authorization": "Basic " + base64.b64encode(b"gh_\x00:x").decode()}]
    for headers in odd:  # not UTF-8; a NUL PostgreSQL would refuse: still just invalid_client
        r = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=headers)
        assert r.status_code == 401 and r.json["error"] == "invalid_client"
    actors = [(row[2], row[3][0]["text"]) for row in _journal(database)]
    assert actors[0] == ("client:gh_nobody", "unknown client")
    assert [a for a, _ in actors[1:]] == ["client:unknown"] * 2  # the request without credentials is counted
    client.application.extensions["gatehouse"].refusals.flush(everything=True)
    (*_, detail), = _journal(database)[3:]
    assert (detail["what"], detail["route"], detail["count"]) == ("anonymous", "POST /oauth/token", 1)


def test_a_revoked_client_gets_no_token_and_its_tokens_stop_working(database, guarded):
    issued = _create(database)
    token = _token(guarded, *_pair(issued)).json["access_token"]
    with psycopg.connect(database.app_url) as conn:
        assert clients.revoke(conn, "okta")[1] == 1
    r = _token(guarded, *_pair(issued))
    assert r.status_code == 401 and r.json["error"] == "invalid_client"
    assert guarded.get("/t/scim", headers=_bearer(token)).status_code == 401
    refusals = [(row[1], row[3][0]) for row in _journal(database)]
    assert refusals[0] == ("refused", {"code": "invalid_client", "text": "client revoked"})
    assert refusals[1][0] == "refused" and refusals[1][1]["code"] == "unauthenticated"


@pytest.mark.parametrize("scope", ["journal:read", "admin", "scim journal:read"])
def test_a_scope_the_client_does_not_hold_is_invalid_scope(database, client, scope):
    issued = _create(database)
    r = _token(client, *_pair(issued), scope=scope)
    assert r.status_code == 400 and r.json["error"] == "invalid_scope"
    (_, outcome, actor, reasons, detail), = _journal(database)
    assert (outcome, actor, reasons[0]["code"], detail["scope"]) == (
        "refused", f"client:{issued.client.client_id}", "invalid_scope", scope)


def test_other_bad_token_requests_are_oauth_errors(database, client):
    issued = _create(database)
    r = client.post("/oauth/token", data={"grant_type": "password"}, headers=_basic(*_pair(issued)))
    assert r.status_code == 400 and r.json["error"] == "unsupported_grant_type"
    r = client.post("/oauth/token", base_url="http://gatehouse.example.com",
                    data={"grant_type": "client_credentials"}, headers=_basic(*_pair(issued)))
    assert r.status_code == 400 and r.json["error"] == "insecure_transport"  # RFC 6749 §3.2
    assert client.get("/oauth/token").status_code == 405
    assert [row[3][0]["code"] for row in _journal(database)] == ["unsupported_grant_type", "insecure_transport"]


def test_an_expired_access_token_is_refused(database, guarded):
    token = _token(guarded, *_pair(_create(database))).json["access_token"]
    assert guarded.get("/t/scim", headers=_bearer(token)).status_code == 200
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
    r = guarded.get("/t/scim", headers=_bearer(token))
    assert r.status_code == 401 and r.json["code"] == "unauthenticated"


def test_no_token_at_all_is_401_and_counted(database, guarded):
    r = guarded.get("/t/scim")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer ")
    assert _journal(database) == []  # counted in memory, one row per route and minute
    guarded.application.extensions["gatehouse"].refusals.flush(everything=True)
    (kind, outcome, actor, reasons, detail), = _journal(database)
    assert (kind, outcome, actor, reasons[0]["code"], detail["count"]) == (
        "admin", "refused", "anonymous", "unauthenticated", 1)


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer"}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer " + "x" * 300}])
def test_no_valid_token_is_401_and_journaled(database, guarded, headers):
    r = guarded.get("/t/scim", headers=headers)
    assert r.status_code == 401 and r.content_type == "application/problem+json"
    assert r.headers["WWW-Authenticate"].startswith("Bearer ")
    (kind, outcome, actor, reasons, _), = _journal(database)
    assert (kind, outcome, actor, reasons[0]["code"]) == ("admin", "refused", "anonymous", "unauthenticated")


def test_static_tokens_work_until_revoked_and_the_scheme_is_case_insensitive(database, guarded):
    _create(database)
    with psycopg.connect(database.app_url) as conn:
        token = clients.issue_static_token(conn, "OKTA").secret
    assert guarded.get("/t/scim", headers={"Authorization": f"bearer {token}"}).status_code == 200
    with psycopg.connect(database.app_url) as conn:
        assert clients.revoke_static_token(conn, token).name == "okta"
        with pytest.raises(NotFound):
            clients.revoke_static_token(conn, token)
    assert guarded.get("/t/scim", headers=_bearer(token)).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(database, guarded):
    token = _token(guarded, *_pair(_create(database))).json["access_token"]

    def last_used():
        with psycopg.connect(database.app_url) as conn:
            return conn.execute("SELECT t.last_used_at, c.last_used_at FROM api_tokens t "
                                "JOIN api_clients c ON c.id = t.client_id").fetchone()

    guarded.get("/t/scim", headers=_bearer(token))
    first = last_used()
    assert first[0] is not None
    guarded.get("/t/scim", headers=_bearer(token))
    assert last_used() == first
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes'")
    guarded.get("/t/scim", headers=_bearer(token))
    again = last_used()
    assert again[0] > first[0] and again[1] > first[1]


def test_secrets_and_tokens_are_stored_only_as_hashes(database, client):
    issued = _create(database)
    access = _token(client, *_pair(issued)).json["access_token"]
    client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": issued.client.client_id,
                                      "client_secret": "attempted-" + issued.secret})
    with psycopg.connect(database.app_url) as conn:
        static = clients.issue_static_token(conn, "okta").secret
        dump = " ".join(row[0] for table in ("api_clients", "api_tokens", "journal")
                        for row in conn.execute(f"SELECT t::text FROM {table} t"))
    assert issued.client.client_id in dump
    for secret in (issued.secret, access, static):
        assert secret not in dump and "\\x" + clients.hash_secret(secret).hex() in dump


def test_store_validates_and_wraps_database_errors(database):
    with psycopg.connect(database.app_url) as conn:
        with pytest.raises(BadRequest, match="valid scopes: scim, access:check"):
            clients.create(conn, name="x", scopes=["root"], created_by="t")
        with pytest.raises(BadRequest, match="at least one scope"):
            clients.create(conn, name="x", scopes=[], created_by="t")
        with pytest.raises(BadRequest, match="bad client name"):
            clients.create(conn, name="no spaces", scopes=["scim"], created_by="t")
        clients.create(conn, name="okta", scopes=["scim", "scim"], created_by="t")
        conn.commit()
        with pytest.raises(Conflict, match="a client named OKTA exists"):
            clients.create(conn, name="OKTA", scopes=["scim"], created_by="t")
        conn.rollback()
        with pytest.raises(NotFound, match="no client named entra"):
            clients.revoke(conn, "entra")
        assert [c.scopes for c in clients.list_all(conn)] == [("scim",)]


def test_long_expired_access_tokens_are_dropped_when_the_client_gets_a_new_one(database, client):
    issued = _create(database)
    _token(client, *_pair(issued))
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '2 days'")
    _token(client, *_pair(issued))
    with psycopg.connect(database.app_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_tokens WHERE expires_at > now()").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM api_tokens").fetchone()[0] == 1


def test_rotating_the_secret_retires_the_old_one_and_its_access_tokens(database, guarded):
    issued = _create(database)
    old = _token(guarded, *_pair(issued)).json["access_token"]
    with psycopg.connect(database.app_url) as conn:
        rotated = clients.rotate_secret(conn, "okta")
    assert rotated.secret != issued.secret and rotated.client.client_id == issued.client.client_id
    assert _token(guarded, *_pair(issued)).status_code == 401
    assert guarded.get("/t/scim", headers=_bearer(old)).status_code == 401
    new = _token(guarded, *_pair(rotated)).json["access_token"]
    assert guarded.get("/t/scim", headers=_bearer(new)).status_code == 200


def test_openapi_describes_the_token_endpoint_and_schemes():
    schemes = openapi.COMPONENTS["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token" and set(flow["scopes"]) == set(SCOPES)
    assert "post" in openapi.PATHS["/oauth/token"]


def test_cli_create_list_token_revoke_are_journaled_without_secrets(database, guarded):
    env = db_env(database)
    made = gatehouse("clients", "create", "entra", "--scope", "scim", "--scope", "access:check", env=env)
    assert made.returncode == 0, made.stderr
    lines = dict(line.split(":", 1) for line in made.stdout.splitlines() if line.startswith("client_"))
    client_id, secret = lines["client_id"].strip(), lines["client_secret"].strip()
    assert client_id.startswith("gh_") and "will not be shown again" in made.stdout
    assert _token(guarded, client_id, secret).status_code == 200

    token = gatehouse("clients", "token", "entra", env=env)
    assert token.returncode == 0 and "will not be shown again" in token.stderr, token.stderr
    static = token.stdout.strip()
    assert guarded.get("/t/scim", headers=_bearer(static)).status_code == 200

    listed = gatehouse("clients", "list", env=env)
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].split()[:3] == ["NAME", "CLIENT_ID", "SCOPES"]
    row = listed.stdout.splitlines()[1].split()
    assert row[:3] == ["entra", client_id, "scim,access:check"] and row[-1] == "-"

    rotated = gatehouse("clients", "rotate", "entra", env=env)
    assert rotated.returncode == 0, rotated.stderr
    new_secret = dict(line.split(":", 1) for line in rotated.stdout.splitlines()
                      if line.startswith("client_"))["client_secret"].strip()
    assert _token(guarded, client_id, secret).status_code == 401
    assert _token(guarded, client_id, new_secret).status_code == 200

    revoked = gatehouse("clients", "revoke", "entra", env=env)
    assert revoked.returncode == 0 and "token(s)" in revoked.stdout
    assert guarded.get("/t/scim", headers=_bearer(static)).status_code == 401

    rows = [r for r in _journal(database) if r[1] == "ok"]
    assert [r[4]["action"] for r in rows] == ["clients.create", "clients.token", "clients.rotate", "clients.revoke"]
    assert {r[2] for r in rows} == {f"operator:{getpass.getuser()}"}
    assert rows[0][4] == {"action": "clients.create", "client": "entra", "client_id": client_id,
                          "scopes": ["scim", "access:check"]}
    journal_text = repr(_journal(database))
    assert secret not in journal_text and static not in journal_text and new_secret not in journal_text


def test_cli_errors_are_one_line(database):
    env = db_env(database)
    assert gatehouse("clients", "create", "okta", "--scope", "scim", env=env).returncode == 0
    for args, message in [
        (("create", "OKTA", "--scope", "scim"), "a client named OKTA exists"),
        (("create", "x", "--scope", "root"), "valid scopes: scim, access:check, training:write, journal:read"),
        (("revoke", "nobody"), "no client named nobody"),
        (("token", "nobody"), "no client named nobody"),
    ]:
        r = gatehouse("clients", *args, env=env)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert gatehouse("clients", "create", "x", env=env).returncode == 2  # --scope is required


def test_token_cache_spares_lookups_and_expires():
    from service.auth.principal import Principal
    from service.auth.tokens import TokenCache

    cache = TokenCache(0.2)
    who = Principal(kind="client", id="1", name="gw", scopes=frozenset({"access:check"}))
    cache.put(b"d", who, None)
    assert cache.get(b"d") is who and cache.get(b"other") is None
    import time

    time.sleep(0.25)
    assert cache.get(b"d") is None
    off = TokenCache(0)
    off.put(b"d", who, None)
    assert off.get(b"d") is None
    from datetime import datetime, timedelta

    short = TokenCache(30)
    short.put(b"e", who, datetime.now(UTC) - timedelta(seconds=1))  # already expired token
    assert short.get(b"e") is None


@pytest.mark.parametrize("seconds", [2, 0])
def test_a_revoked_token_stops_working_within_the_cache_window_through_the_app(settings, database, seconds):
    """GATEHOUSE_TOKEN_CACHE_SECONDS: a worker may trust a token it verified for that long, never longer."""
    import time
    from dataclasses import replace

    from service import bootstrap
    from service.app import create_app

    services = bootstrap.build(replace(settings, token_cache_seconds=seconds), database)
    try:
        http = create_app(services=services).test_client()
        _create(database)
        with psycopg.connect(database.app_url) as conn:
            token = clients.issue_static_token(conn, "okta").secret
        started = time.monotonic()
        assert http.get("/scim/v2/Users", headers=_bearer(token)).status_code == 200
        verified = time.monotonic()  # the cache entry ends between started + seconds and verified + seconds
        with psycopg.connect(database.app_url) as conn:
            clients.revoke(conn, "okta")
        inside = http.get("/scim/v2/Users", headers=_bearer(token)).status_code
        if not seconds:
            assert inside == 401  # no cache: the very next request sees the revocation
        elif time.monotonic() < started + seconds:
            assert inside == 200  # inside the window the worker trusts what it verified (no lookup)
        time.sleep(max(0.0, verified + seconds + 0.1 - time.monotonic()))
        r = http.get("/scim/v2/Users", headers=_bearer(token))
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), r.data
        assert http.get("/scim/v2/Users", headers=_bearer(token)).status_code == 401
    finally:
        services.close()
