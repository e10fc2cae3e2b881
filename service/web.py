"""What every HTTP module shares: the service's parts, its database units of work, the console's blueprints."""

from flask import Blueprint, current_app

from service.db import tx

CONSOLE_HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'", "X-Frame-Options": "DENY"}


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
    """A blueprint under /admin whose every answer forbids framing and foreign scripts."""
    bp = Blueprint(name, import_name, url_prefix="/admin")

    @bp.after_request
    def _frame_and_script_policy(response):
        for header, value in CONSOLE_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    return bp
