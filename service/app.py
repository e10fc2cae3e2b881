"""The Flask application factory."""

import logging
import secrets
import re
import time
import uuid

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import console, console_access, logs, oauth, openapi, wiring
from .config import Settings
from .errors import GatehouseError

log = logging.getLogger("gatehouse.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_BODY = 1024 * 1024


def create_app(settings: Settings | None = None, *, services: wiring.Services | None = None) -> Flask:
    """Build the app; nothing is created at import time."""
    services = services or wiring.build(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False
    app.extensions["gatehouse"] = services
    if services.settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = services.settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    services.pool.open(wait=False)

    app.config.update(SESSION_COOKIE_NAME="gatehouse_flow", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=services.settings.secure_cookies,
                      PERMANENT_SESSION_LIFETIME=600)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(GatehouseError, _gatehouse_error)
    app.register_error_handler(Exception, _unexpected_error)

    from .api import access, health, scim
    from .api import training

    app.register_blueprint(health.bp)
    app.register_blueprint(scim.bp)
    app.register_blueprint(access.bp)
    app.register_blueprint(training.bp)
    openapi.init_app(app)
    console.init_app(app)
    console_access.init_app(app)
    oauth.init_app(app)
    from . import oidc

    oidc.init_app(app)
    return app


def _start_request():
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()


def ensure_secret_key():
    """Load (or create, once for all workers) the key that signs Flask's short-lived flow cookie.

    Blueprints that use flask.session (the OIDC sign-in flow) call this in before_request.
    """
    if not current_app.secret_key:
        services = current_app.extensions["gatehouse"]
        with services.pool.connection() as conn:
            conn.execute("INSERT INTO app_secrets (name, value) VALUES ('flask', %s) ON CONFLICT DO NOTHING",
                         (secrets.token_bytes(32),))
            current_app.secret_key = conn.execute("SELECT value FROM app_secrets WHERE name = 'flask'").fetchone()[0]


def _finish_request(response):
    response.headers["X-Request-Id"] = g.get("request_id", "")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    log.info("%s %s %s", request.method, request.path, response.status_code, extra={"fields": {
        "method": request.method, "path": request.path, "status": response.status_code,
        "ms": round(elapsed, 2)}})
    return response


def problem(status: int, title: str, detail: str, code: str, **extra):
    """A JSON problem body (RFC 9457) with our code and the request id."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code,
            "request_id": g.get("request_id")}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.content_type = "application/problem+json"
    return response


def _scim_path() -> bool:
    return request.path.startswith("/scim/")


def _http_error(e: HTTPException):
    if _scim_path():
        from .api.scim import error_response
        from .scim.errors import ScimError

        return error_response(ScimError(e.code or 500, e.description or e.name))
    response = problem(e.code or 500, e.name, e.description or e.name, e.name.lower().replace(" ", "_"))
    if e.code == 405 and e.valid_methods:
        response.headers["Allow"] = ", ".join(e.valid_methods)
    return response


def _gatehouse_error(e: GatehouseError):
    title = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 503: "Service Unavailable",
             500: "Internal Server Error"}.get(e.status, "Bad Request" if e.status == 400 else "Error")
    response = problem(e.status, title, e.message, e.code)
    response.headers.update(e.headers)
    if e.status == 503:
        response.headers["Retry-After"] = "5"
    return response


def _unexpected_error(e: Exception):
    log.exception("unhandled error")
    if _scim_path():
        from .api.scim import error_response
        from .scim.errors import ScimError

        return error_response(ScimError(500, "an unexpected error occurred; see the server log"))
    return problem(500, "Internal Server Error", "an unexpected error occurred; see the server log", "internal")
