"""One way to use the database for a unit of work, with one meaning for "the database is not there".

`transaction(pool)` and `connection(pool)` turn an unreachable or failing server (psycopg's OperationalError,
the pool's PoolTimeout among them) into DatabaseUnavailable, which every caller answers the same way: a 503
problem on the API, a SCIM error on /scim, one line and exit 2 in the CLI; and a deny on the check, never an
allow. The request id of the web request in progress is carried in a context variable, so that every journal
row written while serving it names it without each caller passing it along.
"""

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import psycopg

from service.db.pool import connect, first_line
from service.errors import DatabaseUnavailable

REQUEST_ID: ContextVar[str | None] = ContextVar("gatehouse_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the web request being served in this thread, or None (the worker, the CLI)."""
    return REQUEST_ID.get()


@contextlib.contextmanager
def direct(url: str, *, timeout: float, what: str = "database not reachable",
           autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """One connection of its own (the CLI's), with the same meaning for a database that fails as the pool's."""
    try:
        with connect(url, timeout=timeout, autocommit=autocommit) as conn:
            yield conn
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"{what}: {first_line(e)}") from None


@contextlib.contextmanager
def connection(pool, *, what: str = "database not reachable") -> Iterator[psycopg.Connection]:
    """A pooled connection, committed at the end unless the block raised (the pool's own rule)."""
    try:
        with pool.connection() as conn:
            yield conn
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"{what}: {first_line(e)}") from None


@contextlib.contextmanager
def transaction(pool, *, what: str = "database not reachable") -> Iterator[psycopg.Connection]:
    """A pooled connection in one transaction: every change of the block and its journal rows, or none."""
    with connection(pool, what=what) as conn, conn.transaction():
        yield conn
