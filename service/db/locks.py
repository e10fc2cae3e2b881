"""PostgreSQL session advisory locks: one holder per name across every process and replica."""

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg

from service.db.pool import connect
from service.db.query import scalar

LOCK_CLASS = 0x67617465  # "gate": first key of Gatehouse's two-key advisory locks (the migration lock has one key)


@contextmanager
def advisory_lock(url: str, name: str, *, timeout: float, wait: float = 0) -> Iterator[psycopg.Connection | None]:
    """A connection holding the session lock for `name` while the block runs, or None when another holds it.

    wait > 0: queue for the lock up to that many seconds. The connection is in
    autocommit mode; use conn.transaction() for writes.
    """
    conn = connect(url, timeout=timeout, autocommit=True)
    locked = False
    try:
        if wait:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(wait * 1000)}ms",))
            try:
                conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, name))
                locked = True
            except psycopg.errors.LockNotAvailable:
                locked = False
            conn.execute("SELECT set_config('lock_timeout', '0', false)")
        else:
            locked = scalar(conn, "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, name))
        yield conn if locked else None
    finally:
        if locked and not conn.broken:  # release now: a closed session's lock lingers until its backend exits
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, name))
        conn.close()  # ends the session, and with it any lock still held


def transaction_lock(conn: psycopg.Connection, name: str) -> None:
    """Wait for the lock for `name` until the caller's transaction ends; it excludes advisory_lock(name) holders."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, name))
