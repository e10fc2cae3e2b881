"""What every HTTP module shares: the service's parts for the current app."""

from flask import current_app


def services():
    """The Services the app was built with (bootstrap.build)."""
    return current_app.extensions["gatehouse"]
