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


# The policy's [[targets]] (sql/017_outbox.sql): by key; one dropped from the file is disabled, never deleted
# (its outbox rows and journal rows name it), so the grants trigger stops writing rows for it.
_UPSERT_TARGET = """
INSERT INTO outbound_targets (key, resource_id, type, enabled)
SELECT %(key)s, r.id, %(type)s, true FROM resources r WHERE r.key = %(resource)s
ON CONFLICT (key) DO UPDATE SET resource_id = EXCLUDED.resource_id, type = EXCLUDED.type, enabled = true,
    updated_at = now()
WHERE (outbound_targets.resource_id, outbound_targets.type, outbound_targets.enabled)
      IS DISTINCT FROM (EXCLUDED.resource_id, EXCLUDED.type, true)
"""
_DISABLE_DROPPED_TARGETS = """
UPDATE outbound_targets SET enabled = false, updated_at = now() WHERE enabled AND NOT (key = ANY(%(keys)s))
"""


def sync_resources(conn: psycopg.Connection, policy: Policy) -> None:
    """Insert the policy's resources by key, or update their name and kind; never delete. Then its targets."""
    with conn.transaction():
        for r in policy.resources:
            conn.execute(_UPSERT_RESOURCE, {"key": r.key, "name": r.name, "kind": r.kind})
        sync_targets(conn, policy)
        record_text(conn, policy)


def record_text(conn: psycopg.Connection, policy: Policy) -> None:
    """Keep the text of a version the service runs with (content-addressed): evidence for a period reads it back."""
    if policy.text:
        conn.execute("INSERT INTO policy_texts (version, text) VALUES (%s, %s) ON CONFLICT (version) DO NOTHING",
                     (policy.version, policy.text))


def sync_targets(conn: psycopg.Connection, policy: Policy) -> None:
    """The policy's outbound targets by key, enabled; the ones it no longer names, disabled."""
    for t in policy.targets:
        conn.execute(_UPSERT_TARGET, {"key": t.key, "type": t.type, "resource": t.resource})
    conn.execute(_DISABLE_DROPPED_TARGETS, {"keys": [t.key for t in policy.targets]})


def sync_resources_at(url: str, policy: Policy, *, timeout: float) -> None:
    """sync_resources on a connection of its own; DatabaseUnavailable if the server does not answer."""
    try:
        with connect(url, timeout=timeout) as conn:
            sync_resources(conn, policy)
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"cannot sync the policy's resources: {first_line(e)}") from None
