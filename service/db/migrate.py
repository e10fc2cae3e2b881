"""Migrations: plain SQL files in sql/, applied in order under an advisory lock.

Each file runs in its own transaction with lock_timeout and statement_timeout
set, and is recorded in schema_migrations with its checksum. After every run
sql/grants.sql re-applies the application role's privileges.
"""

import dataclasses
import hashlib
import re
from importlib import resources

import psycopg

from service.db.pool import Database, connect, first_line
from service.db.query import scalar
from service.errors import MigrationError, MigrationsPending

LOCK_KEY = 0x6761746568  # "gateh": one advisory lock for all migrators
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_OWNS_DATABASE = """
SELECT r.rolsuper OR r.oid = d.datdba FROM pg_catalog.pg_roles r, pg_catalog.pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()"""
_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Status:
    applied: list[int]
    pending: list[Migration]

    @property
    def current(self) -> bool:
        return not self.pending


def available() -> list[Migration]:
    """The migration files shipped with this version, in order."""
    found = []
    for entry in resources.files("gatehouse_sql").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    return found


def status(conn: psycopg.Connection) -> Status:
    """What is applied and what is pending; refuses a database edited files disagree with."""
    exists = scalar(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL")
    rows = conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY version").fetchall() if exists else []
    applied: dict[int, str] = dict(rows)
    files = available()
    for m in files:
        if m.version in applied and applied[m.version] != m.checksum:
            raise MigrationError(f"migration {m.version:03d}_{m.name}.sql was changed after it was applied")
    unknown = sorted(set(applied) - {m.version for m in files})
    if unknown:
        raise MigrationError(f"the database has migration {unknown[0]:03d}, newer than this Gatehouse")
    return Status(applied=sorted(applied), pending=[m for m in files if m.version not in applied])


def migrate(db: Database, *, lock_timeout: str = "10s", statement_timeout: str = "5min") -> list[Migration]:
    """Apply pending migrations as the owner; return those applied by this call."""
    if db.owner_url is None:
        raise MigrationError("this process holds no owner URL: run gatehouse db migrate")
    done = []
    with connect(db.owner_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(_CREATE_TABLE)
            for m in status(conn).pending:
                _apply(conn, m, lock_timeout, statement_timeout)
                done.append(m)
            if not db.single_role:
                _grant(conn, db.app_role)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return done


def prepare_for_service(database: Database, *, timeout: float) -> Database:
    """Make sure the schema is current before `serve` or `worker` starts; return the Database they keep.

    They never use the owner's URL: a process that faces the network or runs
    jobs must not hold credentials that can disable the journal's triggers.
    Embedded mode, and a service URL that logs in as the database's owner (or a
    superuser: development), migrate here. Otherwise the status is read as the
    application role, and a pending migration stops the start.
    """
    if database.embedded:
        migrate(database)
    else:
        database = dataclasses.replace(database, owner_url=None)
    with connect(database.app_url, timeout=timeout, autocommit=True) as conn:
        if not database.embedded and scalar(conn, _OWNS_DATABASE):
            migrate(dataclasses.replace(database, owner_url=database.app_url))
        state = status(conn)
    if not state.current:
        first = state.pending[0]
        raise MigrationsPending(f"{len(state.pending)} migration(s) pending, from {first.version:03d}_{first.name}: "
                                "run gatehouse db migrate")
    return database


def _apply(conn: psycopg.Connection, m: Migration, lock_timeout: str, statement_timeout: str) -> None:
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                         (lock_timeout, statement_timeout))
            conn.execute(m.text.encode())
            conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                         (m.version, m.name, m.checksum))
    except psycopg.Error as e:
        raise MigrationError(f"migration {m.version:03d}_{m.name}.sql failed: {first_line(e)}") from None


def _grant(conn: psycopg.Connection, app_role: str) -> None:
    text = resources.files("gatehouse_sql").joinpath("grants.sql").read_text("utf-8")
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('gatehouse.app_role', %s, true)", (app_role,))
            conn.execute(text.encode())
    except psycopg.Error as e:
        raise MigrationError(f"granting privileges to {app_role} failed: {first_line(e)}") from None
