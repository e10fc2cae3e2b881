"""The database: which server, which roles, and the one connection pool.

With GATEHOUSE_DATABASE_URL, that server. Without it, an embedded real
PostgreSQL from the pgserver wheel in the data directory, shared by every
gatehouse process on that directory and stopped when the last one exits
(service.db.lifecycle keeps that promise).
"""

import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from service.config import Settings
from service.db import lifecycle
from service.errors import ConfigError, DatabaseUnavailable

log = logging.getLogger(__name__)

EMBEDDED_DB = "gatehouse"
EMBEDDED_OWNER = "gatehouse_owner"
_embedded_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Database:
    """Connection strings for the two roles: the owner migrates, the app serves.

    owner_url is None in `serve` and `worker` outside embedded mode: they never use the owner's URL.
    """

    owner_url: str | None
    app_url: str
    app_role: str
    embedded: bool = False

    @property
    def single_role(self) -> bool:
        return self.owner_url is not None and self.app_role == role_of(self.owner_url)


def role_of(url: str) -> str:
    """The user name a connection string logs in as."""
    return str(conninfo_to_dict(url).get("user") or "")


def resolve(settings: Settings) -> Database:
    """Find (or start) the database the settings name; raise on bad settings."""
    if settings.database_url:
        owner = settings.database_owner_url or settings.database_url
        app_role = role_of(settings.database_url)
        if not app_role:
            raise ConfigError("GATEHOUSE_DATABASE_URL", "the URL must name the user to log in as")
        return Database(owner_url=owner, app_url=settings.database_url, app_role=app_role)
    if settings.database_owner_url:
        raise ConfigError("GATEHOUSE_DATABASE_OWNER_URL", "set GATEHOUSE_DATABASE_URL as well")
    return embedded(settings.data_dir, settings.app_role)


def embedded(data_dir: Path, app_role: str) -> Database:
    """Start (or join) the embedded server in data_dir, with our database and roles."""
    pgdata = (data_dir / "postgres").absolute()
    with _embedded_lock:
        try:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError("GATEHOUSE_DATA_DIR", f"cannot create {pgdata.parent}: {e.strerror}") from None
        try:
            info = lifecycle.join(pgdata)  # started if none runs; stopped by the last holder to leave
        except Exception as e:  # pgserver raises bare subprocess and OS errors
            raise DatabaseUnavailable(f"the embedded PostgreSQL in {pgdata} did not start: {e}") from None
    at: dict[str, Any] = {"host": str(info.socket_dir), "port": info.port}
    ensure_roles_and_database(url(**at, dbname="postgres", user="postgres"),
                              owner=EMBEDDED_OWNER, app=app_role, dbname=EMBEDDED_DB)
    return Database(
        owner_url=url(**at, dbname=EMBEDDED_DB, user=EMBEDDED_OWNER),
        app_url=url(**at, dbname=EMBEDDED_DB, user=app_role),
        app_role=app_role,
        embedded=True,
    )


def url(*, host: str, port: int | str, dbname: str, user: str, password: str | None = None) -> str:
    """A postgresql:// URL; a host starting with / is a unix socket directory."""
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    if host.startswith("/"):
        return f"postgresql://{auth}@/{quote(dbname, safe='')}?host={quote(host, safe='')}&port={port}"
    return f"postgresql://{auth}@{host}:{port}/{quote(dbname, safe='')}"


def ensure_roles_and_database(superuser_url: str, *, owner: str, app: str, dbname: str,
                              password: str | None = None) -> None:
    """Create the owner and application login roles and the database, if missing."""
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        # Serialize concurrent first starts: CREATE ROLE/DATABASE have no IF NOT EXISTS.
        conn.execute("SELECT pg_advisory_lock(hashtext('gatehouse:bootstrap'))")
        for role in (owner, app):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(sql.Identifier(role))
                )
            if password:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(dbname), sql.Identifier(owner)))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(dbname)))
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(sql.Identifier(dbname), sql.Identifier(app))
        )
        conn.execute("SELECT pg_advisory_unlock(hashtext('gatehouse:bootstrap'))")


def connect(url: str, *, timeout: float = 5.0, autocommit: bool = False) -> psycopg.Connection:
    """One connection, with unreachable servers reported as DatabaseUnavailable."""
    try:
        return psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=autocommit)
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"cannot connect to the database: {first_line(e)}") from None


RECONNECT_SECONDS = 4.0


def make_pool(url: str, *, size: int, timeout: float, name: str = "gatehouse") -> ConnectionPool:
    """The application's pool.

    No check on every checkout (a round trip per request): a connection that
    broke, say because the server restarted, fails its request (which answers
    503, closed), and the pool replaces it when it comes back broken.

    While the server is down the pool retries with a doubling delay until
    reconnect_timeout, then gives up and starts again at the next request:
    a short timeout keeps the gaps short (1 s, 2 s, 1 s, and again), so the
    service answers within seconds of the server's return (30 s left gaps of
    up to 16 s: a restart was seen to take 4.5 s to be noticed).
    """
    return ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        timeout=timeout,
        name=name,
        open=False,
        reconnect_timeout=RECONNECT_SECONDS,
        kwargs={"connect_timeout": max(1, int(timeout)), "application_name": name},
    )


def first_line(error: BaseException) -> str:
    """A psycopg error's first line, for a one-line message (never a traceback)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
