"""What every HTTP module shares: the service's parts, its database units of work, the console's blueprints."""

from flask import Blueprint, current_app

from service.db import tx

# Every answer (pages, API, SCIM, static files) carries these, set in one place (app._finish_request): scripts and
# styles only from our own files (no inline script, CSP Level 3), no framing, no plugins, forms post only to us.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP Level 2
    "X-Content-Type-Options": "nosniff",
    # same-origin: a review or enrollment token in a URL never leaves as a Referer; our own form posts keep their
    # Origin (no-referrer makes a browser send "Origin: null", which the origin checks refuse).
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"  # RFC 6797; sent only when the base URL is https


def add_security_headers(response, *, https: bool):
    """SECURITY_HEADERS on one response (HSTS too when served over https); a view's own value is replaced."""
    response.headers.update(SECURITY_HEADERS)
    if https:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def services():
    """The Services the app was built with (bootstrap.build)."""
    return current_app.extensions["gatehouse"]


def connection(*, what: str = "database not reachable"):
    """A pooled connection of this app (db.tx.connection): a database that fails is a 503, never a 500."""
    return tx.connection(services().pool, what=what)


def transaction(*, what: str = "database not reachable"):
    """One transaction of this app (db.tx.transaction): its changes and their journal rows commit together."""
    return tx.transaction(services().pool, what=what)


def console_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint under /admin (its answers get SECURITY_HEADERS like every other)."""
    return Blueprint(name, import_name, url_prefix="/admin")
