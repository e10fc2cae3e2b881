"""The app factory: health, readiness, problem bodies, request ids, OpenAPI."""

import json
import logging

import psycopg
import pytest

from service import openapi
from service.app import create_app
from service.clients import store as clients


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_when_migrated(client):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["status"] == "ready"


def test_readyz_503_when_a_migration_is_pending(client, database):
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 2")
    r = client.get("/readyz")
    assert r.status_code == 503 and r.content_type == "application/problem+json"
    assert "pending" in r.json["detail"]


def test_readyz_503_when_the_database_is_unreachable(settings, database):
    from dataclasses import replace

    from service import bootstrap

    bad = replace(database, app_url="postgresql://nobody@127.0.0.1:1/none")
    services = bootstrap.build(replace(settings, db_timeout=1.0), bad)
    try:
        r = create_app(services=services).test_client().get("/readyz")
    finally:
        services.close()
    assert r.status_code == 503 and r.json["code"] == "unavailable"


def test_unknown_path_is_a_problem_body_with_request_id(client):
    r = client.get("/nope", headers={"X-Request-Id": "abc-123"})
    assert r.status_code == 404 and r.content_type == "application/problem+json"
    assert r.json["request_id"] == "abc-123" == r.headers["X-Request-Id"]
    assert r.json["status"] == 404


def test_bad_request_ids_are_replaced(client):
    r = client.get("/healthz", headers={"X-Request-Id": "x" * 100})
    assert len(r.headers["X-Request-Id"]) == 32
    r = client.get("/healthz", headers={"X-Request-Id": "a b;<script>"})
    assert len(r.headers["X-Request-Id"]) == 32


def test_method_not_allowed_is_a_problem(client):
    r = client.post("/healthz")
    assert r.status_code == 405 and r.json["code"] == "method_not_allowed" and "GET" in r.headers["Allow"]


def test_unexpected_errors_never_leak_a_traceback(app, caplog):
    @app.get("/boom")
    def boom():
        raise ZeroDivisionError("secret detail")

    with caplog.at_level(logging.ERROR):
        r = app.test_client().get("/boom")
    assert r.status_code == 500 and "secret" not in r.get_data(as_text=True)
    assert r.json["code"] == "internal"


def test_logs_are_json_with_the_request_id(app, capsys):
    from service import logs

    logs.configure("INFO")
    app.test_client().get("/healthz", headers={"X-Request-Id": "rid-7"})
    line = [entry for entry in capsys.readouterr().err.splitlines() if "rid-7" in entry][-1]
    entry = json.loads(line)
    assert (entry["request_id"], entry["path"], entry["status"]) == ("rid-7", "/healthz", 200)


_API_ROOTS = ("/healthz", "/readyz", "/metrics", "/openapi.json")


def test_openapi_documents_exactly_the_routes(app, client):
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    routes = {}
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith(("/api/", "/oauth/", "/scim/")) or rule.rule in _API_ROOTS):
            continue  # pages (sign-in, console) are not part of the API
        path = str(rule).replace("<", "{").replace(">", "}")
        routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    assert documented == routes
    assert set(openapi.PATHS) == set(routes)


# --- text PostgreSQL cannot store: NUL (U+0000) and lone surrogates ------------------------------------------


def _bearer(database, name: str, scope: str) -> dict:
    with psycopg.connect(database.app_url) as conn:
        clients.create(conn, name=name, scopes=(scope,), created_by="test")
        return {"Authorization": f"Bearer {clients.issue_static_token(conn, name).secret}"}


def _counts(database) -> list:
    with psycopg.connect(database.owner_url) as conn:
        return [conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("journal", "people", "training_completions", "api_tokens", "admins")]


def _doors(bad: str, check: dict, training: dict) -> list:
    """(method, path, keyword arguments of the test client) for each door a string reaches PostgreSQL by."""
    completion = {"person": "alice", "course": "security-awareness", "completed_at": "2025-01-01T00:00:00Z",
                  "source": "lms", "source_id": "1"}
    return [
        ("POST", "/api/v1/access/check", dict(json={"user": bad, "resource": "vpn"}, headers=check)),
        ("POST", "/api/v1/access/check", dict(json={"user": "alice", "resource": "vpn", bad: 1}, headers=check)),
        ("GET", "/api/v1/access/check", dict(query_string={"user": bad, "resource": "vpn"}, headers=check)),
        ("GET", "/api/v1/access/check", dict(query_string={"user": "alice", "resource": bad}, headers=check)),
        ("GET", "/api/v1/access/resources/" + bad + "/members", dict(headers=check)),
        *[("POST", "/api/v1/training/completions", dict(json={"completions": [{**completion, field: bad}]},
                                                        headers=training))
          for field in ("person", "course", "completed_at", "source", "source_id")],
        ("POST", "/oauth/token", dict(data={"grant_type": "client_credentials", "client_id": "lms",
                                            "client_secret": "x", "scope": bad})),
        ("POST", "/oauth/token", dict(data={"grant_type": "client_credentials", "client_id": bad,
                                            "client_secret": "x"})),
        ("POST", "/admin/api/login/finish", dict(json={"assertion": {"id": bad}})),
        ("GET", "/admin/enroll/" + bad, {}),
        ("POST", "/admin/api/enroll/" + bad + "/begin", dict(json={})),
    ]


@pytest.mark.parametrize("bad", ["al\x00ice", "\x00", "\ud800", "a\udfffb"])
def test_a_nul_or_lone_surrogate_at_any_door_is_a_400_problem_and_changes_nothing(client, database, bad):
    check, training = _bearer(database, "gw", "access:check"), _bearer(database, "lms", "training:write")
    before = _counts(database)
    surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in bad)
    for method, path, kwargs in _doors(bad, check, training):
        if surrogate and ("json" not in kwargs or bad in path):
            continue  # only JSON's \ud800 escape carries one: a URL or a form is UTF-8 bytes
        r = client.open(path, method=method, **kwargs)
        assert r.status_code == 400 and r.content_type == "application/problem+json", (method, path, r.json)
        assert "cannot be stored" in r.json["detail"] and r.json["code"] == "bad_request", r.json
    assert _counts(database) == before


def test_the_token_endpoint_answers_in_the_oauth_shape_too(client, database):
    r = client.post("/oauth/token", data={"grant_type": "client_credentials\x00", "client_id": "x",
                                          "client_secret": "y"})
    assert r.status_code == 400 and r.json["error"] == "invalid_request"  # RFC 6749 §5.2
    assert "cannot be stored" in r.json["error_description"]


def test_a_nul_in_a_radius_request_is_a_401_reject_with_the_reason(client, database):
    """FreeRADIUS reads a reply only on 200 and 401: the RADIUS view keeps its own answer."""
    check = _bearer(database, "gw", "access:check")
    before = _counts(database)
    r = client.post("/api/v1/access/radius", json={"user": "al\x00ice"}, headers=check)
    assert r.status_code == 401 and "control" in r.json["reply:Reply-Message"]["value"]
    assert _counts(database) == before


@pytest.mark.parametrize("path", ["/api/v1/access/check", "/api/v1/access/radius", "/api/v1/training/completions",
                                  "/scim/v2/Users"])
def test_json_nested_too_deep_is_a_400_not_a_500(client, database, path):
    """json.loads raises RecursionError, not ValueError, past about a thousand brackets."""
    headers = {**_bearer(database, "c", {"/scim/v2/Users": "scim", "/api/v1/training/completions": "training:write"}
                                        .get(path, "access:check")), "Content-Type": "application/json"}
    before = _counts(database)
    r = client.post(path, data="[" * 100_000, headers=headers)
    assert r.status_code == (401 if path.endswith("radius") else 400), r.data[:300]
    assert _counts(database) == before
