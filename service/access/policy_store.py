"""The policy file's rules in force and its runs (applied, held, confirmed, discarded), in SQL."""

import dataclasses
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from policies.rules import Pair, RuleChanges
from service.db.query import scalar
from service.errors import Conflict


@dataclasses.dataclass(frozen=True)
class Run:
    """One application of a policy version; a held one waits with the rules it would apply."""

    id: str
    version: str
    source: str
    state: str
    actor: str
    started_at: datetime
    rules: list
    counts: dict
    message: str | None
    applied_at: datetime | None
    decided_by: str | None


_COLUMNS = sql.SQL("id::text, version, source, state, actor, started_at, rules, counts, message, applied_at, "
                   "decided_by")


def current_rules(conn: psycopg.Connection) -> list[Pair]:
    """The file rules in force: (group name as the file spelled it, resource key)."""
    return conn.execute("SELECT x.group_name, r.key FROM policy_rules x JOIN resources r ON r.id = x.resource_id "
                        "ORDER BY x.group_key, r.key").fetchall()


def write_rules(conn: psycopg.Connection, changes: RuleChanges, version: str) -> None:
    """Add, drop and respell rules; every rule in force then carries `version`, the file's."""
    for group, resource in changes.removed:
        conn.execute("DELETE FROM policy_rules x USING resources r WHERE r.id = x.resource_id "
                     "AND x.group_key = lower(%s) AND r.key = %s", (group, resource))
    for group, resource in changes.added + changes.renamed:
        row = conn.execute(
            "INSERT INTO policy_rules (group_key, group_name, resource_id, policy_version) "
            "SELECT lower(%(group)s), %(group)s, r.id, %(version)s FROM resources r WHERE r.key = %(resource)s "
            "ON CONFLICT (group_key, resource_id) DO UPDATE SET group_name = EXCLUDED.group_name RETURNING 1",
            {"group": group, "resource": resource, "version": version}).fetchone()
        if row is None:
            raise Conflict(f"no resource {resource!r}: it is not in the policy the service runs with")
    conn.execute("UPDATE policy_rules SET policy_version = %s WHERE policy_version <> %s", (version, version))


def active_grants(conn: psycopg.Connection) -> int:
    """Active grants now: what the guard's share is of."""
    return scalar(conn, "SELECT count(*) FROM grants WHERE state = 'active'")


def in_force(conn: psycopg.Connection) -> str | None:
    """The version of the policy applied last (applied or confirmed), or None."""
    row = conn.execute("SELECT version FROM policy_runs WHERE applied_at IS NOT NULL "
                       "ORDER BY applied_at DESC LIMIT 1").fetchone()
    return row[0] if row else None


def add_run(conn: psycopg.Connection, run_id: str, *, version: str, source: str, state: str, actor: str,
            rules: list[Pair], counts: dict, message: str | None = None) -> list[str]:
    """Record a run, applied or held; it supersedes older held runs (discarded), whose ids are returned."""
    conn.execute("INSERT INTO policy_runs (id, version, source, state, actor, rules, counts, message, applied_at) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s = 'applied' THEN now() END)",
                 (run_id, version, source, state, actor, Jsonb([list(p) for p in rules]), Jsonb(counts), message,
                  state))
    rows = conn.execute("UPDATE policy_runs SET state = 'discarded', decided_by = %s, decided_at = now() "
                        "WHERE state = 'held' AND id <> %s RETURNING id::text", (f"run:{run_id}", run_id)).fetchall()
    return [r[0] for r in rows]


def decide_run(conn: psycopg.Connection, run_id: str, *, state: str, actor: str) -> None:
    """A held run confirmed (its rules now in force) or discarded."""
    conn.execute("UPDATE policy_runs SET state = %s, decided_by = %s, decided_at = now(), "
                 "applied_at = CASE WHEN %s = 'confirmed' THEN now() END WHERE id = %s",
                 (state, actor, state, run_id))


def get_run(conn: psycopg.Connection, run_id: str, *, lock: bool = False) -> Run | None:
    query = sql.SQL("SELECT {} FROM policy_runs WHERE id = %s {}").format(_COLUMNS, sql.SQL("FOR UPDATE" if lock
                                                                                           else ""))
    row = conn.execute(query, (run_id,)).fetchone()
    return Run(*row) if row else None


def held(conn: psycopg.Connection) -> Run | None:
    """The policy change held for confirmation (at most one: a newer run supersedes it), or None.

    What the console's dashboard shows: who, when, which version, and the message saying what it would end.
    """
    row = conn.execute(sql.SQL("SELECT {} FROM policy_runs WHERE state = 'held' ORDER BY started_at DESC LIMIT 1")
                       .format(_COLUMNS)).fetchone()
    return Run(*row) if row else None
