"""The app factory: health, readiness, problem bodies, request ids, OpenAPI."""

import json
import logging

import psycopg

from service import openapi
from service.app import create_app


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

    from service import wiring

    bad = replace(database, app_url="postgresql://nobody@127.0.0.1:1/none")
    services = wiring.build(replace(settings, db_timeout=1.0), bad)
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


_API_ROOTS = ("/healthz", "/readyz", "/openapi.json")


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
