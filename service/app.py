"""The Flask application factory."""

import json
import logging
import re
import time
import uuid

from flask import Flask, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from service import bootstrap, console, health, limits, metrics, openapi, web
from service.access import api as access
from service.access import views as access_views
from service.admins import views as admins_views
from service.audit import api as journal_api
from service.audit import pages as audit_pages
from service.auth import oidc
from service.clients import oauth
from service.clients import views as clients_views
from service.config import Settings
from service.db import tx
from service.directory import views as directory_views
from service.errors import GatehouseError
from service.outbox import views as outbox_views
from service.people import pages as people_pages
from service.people import views as people_views
from service.reviews import views as reviews_views
from service.scim import api as scim
from service.scim.api import error_response
from service.scim.errors import ScimError
from service.training import api as training

log = logging.getLogger("gatehouse.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_BODY = 1024 * 1024
# The doors anyone may knock on, by endpoint, and the setting that limits each (README "Rate limits")
RATE_LIMITED = {
    "oauth_token": "rate_limit_token",
    "oidc.login": "rate_limit_signin", "oidc.callback": "rate_limit_signin",
    "console_admins.login_begin": "rate_limit_signin", "console_admins.login_finish": "rate_limit_signin",
    "console_admins.enroll_page": "rate_limit_enroll", "console_admins.enroll_begin": "rate_limit_enroll",
    "console_admins.enroll_finish": "rate_limit_enroll",
    "reviews.review_page": "rate_limit_review", "reviews.review_decide": "rate_limit_review",
}
_PAGES = {"oidc.login", "oidc.callback", "console_admins.enroll_page", "reviews.review_page",
          "reviews.review_decide"}


def create_app(settings: Settings | None = None, *, services: bootstrap.Services | None = None) -> Flask:
    """Build the app; nothing is created at import time."""
    services = services or bootstrap.build(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False
    app.extensions["gatehouse"] = services
    app.extensions["gatehouse_limits"] = limits.Limiter(max_keys=services.settings.rate_limit_keys)
    if services.settings.trusted_proxies:
        n = services.settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    services.pool.open(wait=False)

    app.config.update(SESSION_COOKIE_NAME="gatehouse_flow", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=services.settings.secure_cookies,
                      PERMANENT_SESSION_LIFETIME=600)
    app.before_request(_start_request)
    app.before_request(_rate_limit)
    app.before_request(_refuse_unstorable_text)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(GatehouseError, _gatehouse_error)
    app.register_error_handler(Exception, _unexpected_error)

    app.register_blueprint(health.bp)
    app.register_blueprint(scim.bp)
    app.register_blueprint(access.bp)
    app.register_blueprint(training.bp)
    app.register_blueprint(journal_api.bp)
    openapi.init_app(app)
    for views in (console, admins_views, clients_views, directory_views, access_views, people_views, people_pages,
                  reviews_views, outbox_views, audit_pages):
        views.init_app(app)
    oauth.init_app(app)
    oidc.init_app(app)
    return app


def _start_request():
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_id_token = tx.REQUEST_ID.set(g.request_id)  # the journal rows of this request name it
    g.started = time.perf_counter()


def _end_request(_error=None):
    token = g.pop("request_id_token", None)
    if token is not None:
        tx.REQUEST_ID.reset(token)  # the thread serves the next request with no id left over


def _rate_limit():
    """A 429 with Retry-After once this address has used up its bucket for this endpoint; nothing is written."""
    setting = RATE_LIMITED.get(request.endpoint or "")
    if setting is None:
        return None
    rate = getattr(web.services().settings, setting)
    wait = current_app.extensions["gatehouse_limits"].take(rate, request.endpoint, request.remote_addr or "")
    if not wait:
        return None
    log.warning("rate limited %s %s", request.method, request.path, extra={"fields": {
        "endpoint": request.endpoint, "client": request.remote_addr, "retry_after": wait}})
    text = f"Too many requests from your address; try again in {wait} seconds."
    if request.endpoint in _PAGES:
        response = current_app.make_response(
            (render_template("oidc_message.html", title="Too many requests", message=text, retry=False), 429))
    else:
        oauth = {"error": "slow_down"} if request.endpoint == "oauth_token" else {}
        response = problem(429, "Too Many Requests", text, "rate_limited", **oauth)
    response.headers["Retry-After"] = str(wait)
    return response


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
# FreeRADIUS reads a reply only on 200 and 401, so this view answers bad input (NUL included) as a 401 itself.
_OWN_INPUT_CHECKS = {"access.radius"}
_NOT_STORABLE = "the {} contains a NUL character or a lone surrogate, which cannot be stored"


def _refuse_unstorable_text():
    """A NUL or a lone surrogate in the path, query, form or JSON body: a 400 before any view runs.

    PostgreSQL text cannot hold U+0000 and UTF-8 cannot encode a lone surrogate, so such a string
    failed at whichever query met it first: a 500 (DataError, UnicodeEncodeError), or a 503 when that
    was the journal's. One check of the decoded input, before authorization and any database work,
    covers every door and changes nothing.
    """
    found = None if request.endpoint in _OWN_INPUT_CHECKS else _unstorable_input()
    if found is None:
        return None
    detail, scim_type = found
    if _scim_path():  # RFC 7644 §3.12
        return error_response(ScimError(detail, status=400, scim_type=scim_type))
    oauth = {"error": "invalid_request", "error_description": detail} if request.path == "/oauth/token" else {}
    return problem(400, "Bad Request", detail, "bad_request", **oauth)  # oauth: RFC 6749 §5.2


def _unstorable_input() -> tuple[str, str] | None:
    """(what is wrong, SCIM error type) if the request carries a string PostgreSQL cannot store."""
    if _unstorable(request.path):
        return _NOT_STORABLE.format("path"), "invalidValue"
    for name, value in request.args.items(multi=True):
        if _unstorable(name) or _unstorable(value):
            if name == "filter":
                return _NOT_STORABLE.format("filter"), "invalidFilter"
            return _NOT_STORABLE.format("query string"), "invalidValue"
    if request.mimetype in _FORMS:
        bad = any(_unstorable(n) or _unstorable(v) for n, v in request.form.items(multi=True))
        return (_NOT_STORABLE.format("form"), "invalidValue") if bad else None
    data = request.get_data()  # cached: the view reads the same bytes
    try:  # any other body is read as the JSON the views parse (SCIM takes one without a Content-Type)
        body = json.loads(data) if data else None
    except ValueError:  # not JSON: each view refuses that in its own way
        return None
    except RecursionError:  # json.loads recurses per bracket; the view's own parse would be a 500
        return "the JSON body nests too deep", "invalidSyntax"
    if isinstance(body, dict) and _unstorable_json(body.get("filter")):  # a SCIM search (RFC 7644 §3.4.3)
        return _NOT_STORABLE.format("filter"), "invalidFilter"
    return (_NOT_STORABLE.format("JSON body"), "invalidValue") if _unstorable_json(body) else None


def _unstorable_json(value) -> bool:
    """True if any string in a decoded JSON value, a key or a value, cannot be stored."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _unstorable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: JSON's \ud800, or raw bytes json decodes with surrogatepass
        return True
    return False


def _finish_request(response):
    response.headers["X-Request-Id"] = g.get("request_id", "")
    response.headers.setdefault("Cache-Control", "no-store")
    web.add_security_headers(response, https=web.services().settings.public_base_url.startswith("https://"))
    elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    if _scim_path():
        metrics.scim_request(request.method, request.path, response.status_code)
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
        response = error_response(ScimError(e.description or e.name, status=e.code or 500))
    else:
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
        return error_response(ScimError("an unexpected error occurred; see the server log", status=500))
    return problem(500, "Internal Server Error", "an unexpected error occurred; see the server log", "internal")
