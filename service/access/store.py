"""Grants: who may use which resource, given by an admin or by a group rule."""

import dataclasses
from datetime import datetime
from uuid import UUID

import psycopg

from service.errors import Conflict, NotFound

LEFT_GROUP = "left the group that granted it"


@dataclasses.dataclass(frozen=True)
class Change:
    """A grant that a call created, restored or revoked, for the journal."""

    person_id: str
    user_name: str
    resource: str
    state: str
    reason: str | None
    policy_version: str | None = None  # of the policy file whose rule gave it


@dataclasses.dataclass(frozen=True)
class Rule:
    """A group → resource rule: made in the console (by group) or read from the policy file (by group name)."""

    group_id: str | None  # None: a file rule naming a group that does not exist (yet)
    group: str
    resource: str
    created_by: str
    source: str = "console"  # or "policy": the policy file's [[rules]]
    policy_version: str | None = None


def _ids(conn: psycopg.Connection, user: str, resource: str) -> tuple[str, str, str]:
    # Any of the person's logins (their userName, their LDAP uid...), through the one login key (sql/013, 018).
    person = conn.execute("SELECT p.id::text, p.user_name FROM person_logins l JOIN people p ON p.id = l.person_id "
                          "WHERE l.login_key = login_key(%s) AND p.deleted_at IS NULL", (user,)).fetchone()
    if person is None:
        raise NotFound(f"no person with userName {user!r}")
    row = conn.execute("SELECT id::text FROM resources WHERE key = %s", (resource,)).fetchone()
    if row is None:
        raise NotFound(f"no resource {resource!r}")
    return person[0], person[1], row[0]


def grant(conn: psycopg.Connection, user: str, resource: str, *, by: str) -> Change:
    """Grant by hand: active now, whatever the grant's state was (an admin decided)."""
    person_id, user_name, resource_id = _ids(conn, user, resource)
    conn.execute(
        "INSERT INTO grants (person_id, resource_id, state, granted_by) VALUES (%s, %s, 'active', %s) "
        "ON CONFLICT (person_id, resource_id) DO UPDATE SET state = 'active', reason = NULL, "
        "granted_by = EXCLUDED.granted_by, granted_at = now(), updated_at = now()", (person_id, resource_id, by))
    return Change(person_id, user_name, resource, "active", None)


def revoke(conn: psycopg.Connection, user: str, resource: str, *, reason: str) -> Change:
    person_id, user_name, resource_id = _ids(conn, user, resource)
    row = conn.execute("UPDATE grants SET state = 'revoked', reason = %s, updated_at = now() "
                       "WHERE person_id = %s AND resource_id = %s AND state <> 'revoked' RETURNING 1",
                       (reason, person_id, resource_id)).fetchone()
    if row is None:
        raise NotFound(f"{user_name} holds no live grant on {resource}")
    return Change(person_id, user_name, resource, "revoked", reason)


_RULES = """
SELECT g.id::text, g.display_name, r.key, x.created_by, 'console', NULL FROM group_grant_rules x
JOIN groups g ON g.id = x.group_id JOIN resources r ON r.id = x.resource_id
UNION ALL
SELECT g.id::text, coalesce(g.display_name, x.group_name), r.key, 'policy file', 'policy', x.policy_version
FROM policy_rules x JOIN resources r ON r.id = x.resource_id LEFT JOIN groups g ON lower(g.display_name) = x.group_key
ORDER BY 5, 2, 3
"""


def rules(conn: psycopg.Connection) -> list[Rule]:
    """Every rule, the console's first, then the policy file's; by group name and resource."""
    return [Rule(*r) for r in conn.execute(_RULES)]


def add_rule(conn: psycopg.Connection, group: str, resource: str, *, by: str) -> Rule:
    row = conn.execute("SELECT g.id::text, g.display_name, r.id::text FROM groups g, resources r "
                       "WHERE lower(g.display_name) = lower(%s) AND r.key = %s", (group, resource)).fetchone()
    if row is None:
        raise NotFound(f"no group {group!r} or no resource {resource!r}")
    added = conn.execute("INSERT INTO group_grant_rules (group_id, resource_id, created_by) VALUES (%s, %s, %s) "
                         "ON CONFLICT DO NOTHING RETURNING 1", (row[0], row[2], by)).fetchone()
    if added is None:
        raise Conflict(f"members of {row[1]} already get {resource}")
    return Rule(row[0], row[1], resource, by)


def remove_rule(conn: psycopg.Connection, group: str, resource: str) -> Rule:
    row = conn.execute(
        "DELETE FROM group_grant_rules x USING groups g, resources r WHERE x.group_id = g.id AND x.resource_id = r.id "
        "AND lower(g.display_name) = lower(%s) AND r.key = %s RETURNING g.id::text, g.display_name, x.created_by",
        (group, resource)).fetchone()
    if row is None:
        if conn.execute("SELECT 1 FROM policy_rules x JOIN resources r ON r.id = x.resource_id "
                        "WHERE x.group_key = lower(%s) AND r.key = %s", (group, resource)).fetchone():
            raise Conflict(f"{group} → {resource} is a rule of the policy file: remove it there and apply the policy")
        raise NotFound(f"no rule giving {resource} to {group}")
    return Rule(row[0], row[1], resource, row[2])


@dataclasses.dataclass(frozen=True)
class Grant:
    """A grant as `gatehouse access list` shows it."""

    user_name: str
    resource: str
    state: str
    reason: str | None
    granted_by: str
    granted_at: datetime
    updated_at: datetime


_GRANTS = """
SELECT p.user_name, r.key, g.state, g.reason, g.granted_by, g.granted_at, g.updated_at
FROM grants g JOIN people p ON p.id = g.person_id JOIN resources r ON r.id = g.resource_id
WHERE (%(user)s::text IS NULL
       OR p.id = (SELECT l.person_id FROM person_logins l WHERE l.login_key = login_key(%(user)s)))
  AND (%(resource)s::text IS NULL OR r.key = %(resource)s)
ORDER BY lower(p.user_name), r.key
"""


def list_grants(conn: psycopg.Connection, *, user: str | None = None, resource: str | None = None) -> list[Grant]:
    """Grants of every state, of one person (by userName) or on one resource; NotFound for an unknown one."""
    if user is not None and conn.execute("SELECT 1 FROM person_logins WHERE login_key = login_key(%s)",
                                         (user,)).fetchone() is None:
        raise NotFound(f"no person with userName {user!r}")
    if resource is not None and conn.execute("SELECT 1 FROM resources WHERE key = %s", (resource,)).fetchone() is None:
        raise NotFound(f"no resource {resource!r}")
    return [Grant(*r) for r in conn.execute(_GRANTS, {"user": user, "resource": resource})]


# Who a rule covers: members of a console rule's group, or of the group a file rule names (by lower name).
_COVERED = """
SELECT m.person_id, x.resource_id, NULL::text AS policy_version FROM group_grant_rules x
JOIN group_members m ON m.group_id = x.group_id
UNION ALL
SELECT m.person_id, x.resource_id, x.policy_version FROM policy_rules x
JOIN groups g ON lower(g.display_name) = x.group_key JOIN group_members m ON m.group_id = g.id
"""

_GRANT_BY_RULES = """
WITH covered AS (""" + _COVERED + """)
INSERT INTO grants (person_id, resource_id, state, granted_by)
SELECT DISTINCT c.person_id, c.resource_id, 'active', 'rule'
FROM covered c JOIN people p ON p.id = c.person_id AND p.active
ON CONFLICT (person_id, resource_id) DO UPDATE SET state = 'active', reason = NULL, updated_at = now()
    WHERE grants.granted_by = 'rule' AND grants.state = 'revoked' AND grants.reason = %(left)s
RETURNING person_id::text, resource_id
"""

# Rule grants whose holder is in no group that still has a rule for the resource.
_REVOKE_ORPHANS = """
WITH covered AS (""" + _COVERED + """)
UPDATE grants g SET state = 'revoked', reason = %(left)s, updated_at = now()
WHERE g.granted_by = 'rule' AND g.state <> 'revoked'
  AND NOT EXISTS (SELECT 1 FROM covered c WHERE c.resource_id = g.resource_id AND c.person_id = g.person_id)
RETURNING person_id::text, resource_id
"""

# The policy file version behind each new grant that a file rule covers.
_VERSIONS = """
WITH covered AS (""" + _COVERED + """)
SELECT c.person_id::text, c.resource_id, max(c.policy_version) FROM covered c
WHERE c.policy_version IS NOT NULL AND (c.person_id, c.resource_id) IN (SELECT * FROM unnest(%s::uuid[], %s::uuid[]))
GROUP BY 1, 2
"""


def apply_rules(conn: psycopg.Connection) -> list[Change]:
    """Bring rule grants in line with group membership: grant to members, revoke from leavers.

    A rule brings back only what a rule took away (someone who rejoins); a grant
    revoked or suspended for any other reason (a leaver, a lapse, an admin) stays so.
    """
    granted = conn.execute(_GRANT_BY_RULES, {"left": LEFT_GROUP}).fetchall()
    revoked = conn.execute(_REVOKE_ORPHANS, {"left": LEFT_GROUP}).fetchall()
    changes: list[tuple[str, UUID, str, str | None]] = [(pid, rid, "active", None) for pid, rid in granted]
    changes += [(pid, rid, "revoked", LEFT_GROUP) for pid, rid in revoked]
    if not changes:
        return []
    names: dict[str, str] = dict(conn.execute(
        "SELECT id::text, user_name FROM people WHERE id = ANY(%s::uuid[])", ([c[0] for c in changes],)))
    keys: dict[UUID, str] = dict(conn.execute(
        "SELECT id, key FROM resources WHERE id = ANY(%s)", ([c[1] for c in changes],)))
    versions = {}
    if granted:
        versions = {(pid, rid): v for pid, rid, v in conn.execute(_VERSIONS, ([g[0] for g in granted],
                                                                               [g[1] for g in granted]))}
    return [Change(pid, names[pid], keys[rid], state, reason, versions.get((pid, rid)))
            for pid, rid, state, reason in changes]


def resource_keys(conn: psycopg.Connection) -> list[str]:
    """Every resource's key, in order: what a grant or a rule may name."""
    return [r[0] for r in conn.execute("SELECT key FROM resources ORDER BY key")]


@dataclasses.dataclass(frozen=True)
class Held:
    """One grant of a person, any state, as the people pages show it."""

    resource: str
    resource_name: str
    state: str
    reason: str | None
    granted_by: str
    granted_at: object
    updated_at: object


def grants_of(conn: psycopg.Connection, person_id: str) -> list[Held]:
    """Every grant of one person (active, suspended, revoked), by resource."""
    return [Held(*r) for r in conn.execute(
        "SELECT r.key, r.name, g.state, g.reason, g.granted_by, g.granted_at, g.updated_at FROM grants g "
        "JOIN resources r ON r.id = g.resource_id WHERE g.person_id = %s ORDER BY r.key", (person_id,))]


def grants_per_resource(conn: psycopg.Connection) -> list[tuple[str, str, int, int]]:
    """(key, name, active grants, suspended grants) of each resource, live people only."""
    return conn.execute(
        "SELECT r.key, r.name, count(p.id) FILTER (WHERE g.state = 'active'), "
        "count(p.id) FILTER (WHERE g.state = 'suspended') FROM resources r "
        "LEFT JOIN grants g ON g.resource_id = r.id LEFT JOIN people p ON p.id = g.person_id AND p.deleted_at IS NULL "
        "GROUP BY r.key, r.name ORDER BY r.key").fetchall()
