"""Liveness and readiness."""

import psycopg
from flask import Blueprint, current_app, jsonify

from .. import migrate
from ..db import first_line
from ..errors import DatabaseUnavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """The database answers and its schema is current."""
    services = current_app.extensions["gatehouse"]
    try:
        with services.pool.connection() as conn:
            state = migrate.status(conn)
    except psycopg.Error as e:  # includes the pool's PoolTimeout
        raise DatabaseUnavailable(f"database not reachable: {first_line(e)}") from None
    if not state.current:
        raise DatabaseUnavailable(f"{len(state.pending)} migration(s) pending")
    return jsonify(status="ready", schema=state.applied[-1] if state.applied else 0)
