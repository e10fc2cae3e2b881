"""A migrated Gatehouse database for a benchmark.

GATEHOUSE_BENCH_DATABASE_URL (a superuser's) if set, else a fresh embedded server.
"""

import contextlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import psycopg

from service import db
from service.db import migrate


@contextlib.contextmanager
def server():
    """A superuser URL: GATEHOUSE_BENCH_DATABASE_URL if set, else a fresh embedded server, removed afterwards."""
    given = os.environ.get("GATEHOUSE_BENCH_DATABASE_URL")
    if given:
        yield given
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    pgdata = Path(tempfile.mkdtemp(prefix="gatehouse-bench-pg-", dir="/tmp"))
    embedded = pgserver.get_server(pgdata, cleanup_mode="delete")
    info = embedded.get_postmaster_info()
    try:
        yield db.url(host=str(info.socket_dir), port=info.port, dbname="postgres", user="postgres")
    finally:
        embedded.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


@contextlib.contextmanager
def bench_database(name: str = "gatehouse_bench"):
    """Yield a migrated db.Database on a real PostgreSQL, cleaned up afterwards."""
    with server() as superuser:
        yield from _database(superuser, name)


def _database(superuser: str, name: str):
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    db.ensure_roles_and_database(superuser, owner="gatehouse_owner", app="gatehouse_app", dbname=name)
    info = psycopg.conninfo.conninfo_to_dict(superuser)
    at = {"host": info.get("host") or "127.0.0.1", "port": info.get("port") or 5432, "dbname": name}
    database = db.Database(owner_url=db.url(**at, user="gatehouse_owner"), app_url=db.url(**at, user="gatehouse_app"),
                           app_role="gatehouse_app")
    migrate.migrate(database)
    yield database, db.url(**at, user=info.get("user") or "postgres")
