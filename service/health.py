"""Liveness and readiness."""

import psycopg
from flask import Blueprint, jsonify

from service import journal, web
from service.db import first_line, migrate
from service.errors import DatabaseUnavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """The database answers, its schema is current and the journal can be appended to."""
    services = web.services()
    try:
        with services.pool.connection() as conn:
            state = migrate.status(conn)
            if not state.current:
                raise DatabaseUnavailable(f"{len(state.pending)} migration(s) pending")
            journal.check_tail(conn)
    except psycopg.Error as e:  # includes the pool's PoolTimeout
        raise DatabaseUnavailable(f"database not reachable: {first_line(e)}") from None
    return jsonify(status="ready", schema=state.applied[-1] if state.applied else 0)
