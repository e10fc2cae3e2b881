"""Reading the one value a query always answers."""

import uuid
from typing import Any, TypeVar

import psycopg
from psycopg import sql

T = TypeVar("T")


Query = str | sql.SQL | sql.Composed


def one(conn: psycopg.Connection, query: Query, params: Any = None) -> tuple[Any, ...]:
    """The row a query always returns: count(*), EXISTS, now(), INSERT ... RETURNING, the journal's head.

    A query of that kind that answers no row is a bug (or a row-level policy hiding it), raised as one here
    instead of surfacing later as "None is not subscriptable" or, worse, read as a missing value.
    """
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise LookupError(f"expected one row, got none: {query!r}")
    return row


def scalar(conn: psycopg.Connection, query: Query, params: Any = None) -> Any:
    """The first column of the row a query always returns."""
    return one(conn, query, params)[0]


def required(value: T | None, what: str) -> T:
    """What the code just produced (a row this transaction wrote, read back; the receipt a flusher filled in):
    absent only through a bug, raised as one."""
    if value is None:
        raise LookupError(f"{what} is missing where it was just produced")
    return value


def is_uuid(text: str) -> bool:
    """Whether PostgreSQL would take `text` as a uuid: check before a ::uuid cast, which would abort the transaction."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
