"""Where the service is served: each `gatehouse serve` records its base URL at start, for operator commands.

`gatehouse admin enroll` runs with its own settings, often none; the link it prints must reach the service
that is running, not the CLI's default port.
"""

import psycopg

from service.db import connect, first_line
from service.errors import DatabaseUnavailable


def announce(url: str, base_url: str, *, timeout: float) -> None:
    """Record (as the application role) that a service now serves base_url."""
    try:
        with connect(url, timeout=timeout) as conn:
            conn.execute("INSERT INTO served_urls (base_url) VALUES (%s) ON CONFLICT (base_url) "
                         "DO UPDATE SET started_at = now()", (base_url,))
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"cannot record the served URL: {first_line(e)}") from None


def latest(conn: psycopg.Connection) -> str | None:
    """The base URL of the service started last on this database, or None if none ever started."""
    row = conn.execute("SELECT base_url FROM served_urls ORDER BY started_at DESC LIMIT 1").fetchone()
    return row[0] if row else None
