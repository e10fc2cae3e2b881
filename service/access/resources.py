"""The policy's resources in the database: inserted or updated by key at start, never deleted."""

import logging

import psycopg

from policies import Policy
from service.db import connect, first_line
from service.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

# By key; the policy file owns name and kind. Resources are never deleted here:
# grants and journal rows still name a resource dropped from the file.
_UPSERT_RESOURCE = """
INSERT INTO resources (key, name, kind) VALUES (%(key)s, %(name)s, %(kind)s)
ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, updated_at = now()
WHERE (resources.name, resources.kind) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind)
"""


def sync_resources(conn: psycopg.Connection, policy: Policy) -> None:
    """Insert the policy's resources by key, or update their name and kind; never delete."""
    with conn.transaction():
        for r in policy.resources:
            conn.execute(_UPSERT_RESOURCE, {"key": r.key, "name": r.name, "kind": r.kind})


def sync_resources_at(url: str, policy: Policy, *, timeout: float) -> None:
    """sync_resources on a connection of its own; DatabaseUnavailable if the server does not answer."""
    try:
        with connect(url, timeout=timeout) as conn:
            sync_resources(conn, policy)
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"cannot sync the policy's resources: {first_line(e)}") from None
