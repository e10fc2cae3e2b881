"""What every HTTP module shares: the service's parts for the current app, and the console's blueprints."""

from flask import Blueprint, current_app

CONSOLE_HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def services():
    """The Services the app was built with (bootstrap.build)."""
    return current_app.extensions["gatehouse"]


def console_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint under /admin whose every answer forbids framing and foreign scripts."""
    bp = Blueprint(name, import_name, url_prefix="/admin")

    @bp.after_request
    def _frame_and_script_policy(response):
        for header, value in CONSOLE_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    return bp
