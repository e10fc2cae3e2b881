"""Grants: who may use which resource, given by an admin or by a group rule."""

import dataclasses

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


@dataclasses.dataclass(frozen=True)
class Rule:
    group_id: str
    group: str
    resource: str
    created_by: str


def _ids(conn: psycopg.Connection, user: str, resource: str) -> tuple[str, str, str]:
    row = conn.execute(
        "SELECT p.id::text, p.user_name, r.id::text FROM people p, resources r "
        "WHERE lower(p.user_name) = lower(%s) AND p.deleted_at IS NULL AND r.key = %s", (user, resource)).fetchone()
    if row is None:
        raise NotFound(f"no person {user!r} or no resource {resource!r}")
    return row


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


def rules(conn: psycopg.Connection) -> list[Rule]:
    return [
        Rule(*r)
        for r in conn.execute(
            "SELECT g.id::text, g.display_name, r.key, x.created_by FROM group_grant_rules x "
            "JOIN groups g ON g.id = x.group_id JOIN resources r ON r.id = x.resource_id "
            "ORDER BY lower(g.display_name), r.key"
        )
    ]


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
        raise NotFound(f"no rule giving {resource} to {group}")
    return Rule(row[0], row[1], resource, row[2])


_GRANT_BY_RULES = """
INSERT INTO grants (person_id, resource_id, state, granted_by)
SELECT DISTINCT m.person_id, x.resource_id, 'active', 'rule'
FROM group_grant_rules x JOIN group_members m ON m.group_id = x.group_id
JOIN people p ON p.id = m.person_id AND p.active
ON CONFLICT (person_id, resource_id) DO UPDATE SET state = 'active', reason = NULL, updated_at = now()
    WHERE grants.granted_by = 'rule' AND grants.state = 'revoked' AND grants.reason = %(left)s
RETURNING person_id::text, resource_id
"""

# Rule grants whose holder is in no group that still has a rule for the resource.
_REVOKE_ORPHANS = """
UPDATE grants g SET state = 'revoked', reason = %(left)s, updated_at = now()
WHERE g.granted_by = 'rule' AND g.state <> 'revoked'
  AND NOT EXISTS (SELECT 1 FROM group_grant_rules x JOIN group_members m ON m.group_id = x.group_id
                  WHERE x.resource_id = g.resource_id AND m.person_id = g.person_id)
RETURNING person_id::text, resource_id
"""


def apply_rules(conn: psycopg.Connection) -> list[Change]:
    """Bring rule grants in line with group membership: grant to members, revoke from leavers.

    A rule brings back only what a rule took away (someone who rejoins); a grant
    revoked or suspended for any other reason (a leaver, a lapse, an admin) stays so.
    """
    granted = conn.execute(_GRANT_BY_RULES, {"left": LEFT_GROUP}).fetchall()
    revoked = conn.execute(_REVOKE_ORPHANS, {"left": LEFT_GROUP}).fetchall()
    changes = [(pid, rid, "active", None) for pid, rid in granted]
    changes += [(pid, rid, "revoked", LEFT_GROUP) for pid, rid in revoked]
    if not changes:
        return []
    names = dict(conn.execute("SELECT id::text, user_name FROM people WHERE id = ANY(%s::uuid[])",
                              ([c[0] for c in changes],)).fetchall())
    keys = dict(conn.execute("SELECT id, key FROM resources WHERE id = ANY(%s)", ([c[1] for c in changes],)).fetchall())
    return [Change(pid, names[pid], keys[rid], state, reason) for pid, rid, state, reason in changes]


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
