"""The outbox's SQL: the rows due (the oldest unfinished one of each person and target), and each move of a row.

Every move writes its journal row first (kind outbound, detail.outbox = the row's id): the database refuses
a move without it (sql/017_outbox.sql, outbox_guard).
"""

import dataclasses
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from service import journal
from service.db.query import one, scalar
from service.errors import Conflict, NotFound

COLUMNS = ("o.id, o.idempotency_key::text, o.target, o.person_id::text, o.user_name, o.resource, o.op, o.cause, "
           "o.reason, o.state, o.attempts, o.next_attempt_at, o.last_error, o.created_at")


@dataclasses.dataclass(frozen=True)
class Row:
    id: int
    idempotency_key: str
    target: str
    person_id: str
    user_name: str | None
    resource: str
    op: str
    cause: str
    reason: str | None
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime


# Order per (person, target): only the oldest unfinished row of a pair may go; later ones wait behind it, even
# while it backs off. Dead and discarded rows do not hold the pair up (a later revocation must still go out).
_DUE = f"""
SELECT {COLUMNS} FROM (
    SELECT DISTINCT ON (person_id, target) * FROM outbox WHERE state IN ('intent', 'sent')
    ORDER BY person_id, target, id
) o WHERE o.next_attempt_at <= %(now)s ORDER BY o.id LIMIT %(limit)s
"""


def due(conn: psycopg.Connection, now: datetime, limit: int) -> list[Row]:
    """The rows to deliver now, oldest first, at most one per (person, target)."""
    return [Row(*r) for r in conn.execute(_DUE, {"now": now, "limit": limit})]


def rows(conn: psycopg.Connection, *, state: str | None = None, limit: int = 200) -> list[Row]:
    """Rows for the console and the CLI, newest first, optionally of one state."""
    return [Row(*r) for r in conn.execute(
        f"SELECT {COLUMNS} FROM outbox o WHERE %(state)s::text IS NULL OR o.state = %(state)s "
        "ORDER BY o.id DESC LIMIT %(limit)s", {"state": state, "limit": limit})]


def get(conn: psycopg.Connection, row_id: int, *, lock: bool = False) -> Row:
    row = conn.execute(f"SELECT {COLUMNS} FROM outbox o WHERE o.id = %s" + (" FOR UPDATE" if lock else ""),
                       (row_id,)).fetchone()
    if row is None:
        raise NotFound(f"no outbox row {row_id}")
    return Row(*row)


def accounts(conn: psycopg.Connection, due: list[Row]) -> dict[int, tuple[str | None, str | None, str | None]]:
    """For each row: the person's primary e-mail, LDAP DN and the target's remote id for them (each may be None);
    one query for a whole batch."""
    found = conn.execute(
        "SELECT k.id, p.primary_email, x.external_id, a.remote_id "
        "FROM unnest(%(ids)s::bigint[], %(pids)s::uuid[], %(targets)s::text[]) AS k (id, person_id, target) "
        "LEFT JOIN people p ON p.id = k.person_id "
        "LEFT JOIN person_external_ids x ON x.person_id = k.person_id AND x.source = 'ldap:dn' "
        "LEFT JOIN outbound_accounts a ON a.person_id = k.person_id AND a.target = k.target",
        {"ids": [r.id for r in due], "pids": [r.person_id for r in due], "targets": [r.target for r in due]})
    return {r[0]: r[1:] for r in found}


def remember_remote_id(conn: psycopg.Connection, row: Row, remote_id: str) -> None:
    conn.execute("INSERT INTO outbound_accounts (target, person_id, remote_id) VALUES (%s, %s, %s) "
                 "ON CONFLICT (target, person_id) DO UPDATE SET remote_id = EXCLUDED.remote_id, updated_at = now() "
                 "WHERE outbound_accounts.remote_id <> EXCLUDED.remote_id", (row.target, row.person_id, remote_id))


def move(conn: psycopg.Connection, row: Row, *, outcome: str, actor: str, state: str, detail: dict,
         attempts: int | None = None, next_attempt_at: datetime | None = None, error: str | None = None,
         finished_by: str | None = None) -> None:
    """Journal one step of a row (the attempt and its answer), then move the row, in the caller's transaction."""
    journal.append(conn, journal.Event(
        kind="outbound", outcome=outcome, actor=actor, subject=row.person_id, resource=row.resource,
        reasons=({"code": row.cause, "text": row.reason or row.cause},),
        detail={"outbox": row.id, "target": row.target, "op": row.op, "user": row.user_name,
                "idempotency_key": row.idempotency_key, "state": state, **detail}))
    conn.execute(
        "UPDATE outbox SET state = %(state)s, attempts = coalesce(%(attempts)s, attempts), "
        "next_attempt_at = coalesce(%(next)s, next_attempt_at), last_error = %(error)s, "
        "sent_at = CASE WHEN %(state)s IN ('sent', 'confirmed') THEN coalesce(sent_at, now()) ELSE sent_at END, "
        "confirmed_at = CASE WHEN %(state)s = 'confirmed' THEN now() END, "
        "finished_by = coalesce(%(by)s, finished_by) WHERE id = %(id)s",
        {"state": state, "attempts": attempts, "next": next_attempt_at, "error": error, "by": finished_by,
         "id": row.id})


def later_row(conn: psycopg.Connection, row: Row) -> int | None:
    """The id of a later row of the same person and target, if any: retrying this one would undo it."""
    found = one(conn, "SELECT max(id) FROM outbox WHERE person_id = %s AND target = %s AND id > %s "
                         "AND state <> 'discarded'", (row.person_id, row.target, row.id))
    return found[0]


def retry(conn: psycopg.Connection, row_id: int, *, actor: str, **detail) -> Row:
    """A dead row back to intent, due now, attempts from zero; refused when a later change of the pair exists."""
    row = get(conn, row_id, lock=True)
    if row.state != "dead":
        raise Conflict(f"outbox row {row_id} is {row.state}, not dead")
    later = later_row(conn, row)
    if later is not None:
        raise Conflict(f"outbox row {row_id} is superseded by row {later} of the same person and target: discard it")
    move(conn, row, outcome="retry", actor=actor, state="intent", attempts=0,
         next_attempt_at=scalar(conn, "SELECT now()"), detail=detail)
    return get(conn, row_id)


def discard(conn: psycopg.Connection, row_id: int, *, actor: str, **detail) -> Row:
    """Give up on a row that is not finished: it is never delivered (journaled with who decided)."""
    row = get(conn, row_id, lock=True)
    if row.state in ("confirmed", "discarded"):
        raise Conflict(f"outbox row {row_id} is {row.state} already")
    move(conn, row, outcome="discarded", actor=actor, state="discarded", finished_by=actor, detail=detail)
    return get(conn, row_id)


@dataclasses.dataclass(frozen=True)
class Health:
    """A target's delivery health: failed attempts in a row, the last success, and its quarantine if any."""

    target: str
    failures: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None
    quarantined_at: datetime | None = None
    quarantine_step: int = 0
    probe_at: datetime | None = None


_HEALTH = ("target, failures, last_success_at, last_failure_at, last_error, quarantined_at, quarantine_step, "
           "probe_at")


def health(conn: psycopg.Connection) -> dict[str, Health]:
    """Every target's health that has been tried, by key."""
    return {r[0]: Health(*r) for r in conn.execute(f"SELECT {_HEALTH} FROM outbound_health")}


def record_success(conn: psycopg.Connection, target: str) -> Health:
    """A delivery confirmed: failures back to zero, out of quarantine; returns the health as it was before."""
    before = _locked_health(conn, target)
    conn.execute("UPDATE outbound_health SET failures = 0, last_success_at = now(), quarantined_at = NULL, "
                 "quarantine_step = 0, probe_at = NULL WHERE target = %s", (target,))
    return before


def record_failure(conn: psycopg.Connection, target: str, error: str) -> Health:
    """A failed attempt counted; returns the health after it."""
    _locked_health(conn, target)
    return Health(*one(conn, f"UPDATE outbound_health SET failures = failures + 1, last_failure_at = now(), "
                             f"last_error = %s WHERE target = %s RETURNING {_HEALTH}", (error, target)))


def quarantine(conn: psycopg.Connection, target: str, *, step: int, probe_at: datetime) -> None:
    """Quarantine a target (or keep it so, one step further): nothing goes to it before probe_at."""
    conn.execute("UPDATE outbound_health SET quarantined_at = coalesce(quarantined_at, now()), "
                 "quarantine_step = %s, probe_at = %s WHERE target = %s", (step, probe_at, target))


def _locked_health(conn: psycopg.Connection, target: str) -> Health:
    conn.execute("INSERT INTO outbound_health (target) VALUES (%s) ON CONFLICT DO NOTHING", (target,))
    return Health(*one(conn, f"SELECT {_HEALTH} FROM outbound_health WHERE target = %s FOR UPDATE", (target,)))


def unconfirmed(conn: psycopg.Connection, target: str, sent_before: datetime) -> list[Row]:
    """Rows of a target sent before the given time, still not confirmed, not escalated yet."""
    return [Row(*r) for r in conn.execute(
        f"SELECT {COLUMNS} FROM outbox o WHERE o.target = %s AND o.state = 'sent' AND o.sent_at < %s "
        "AND NOT EXISTS (SELECT 1 FROM outbox_escalations e WHERE e.outbox_id = o.id) ORDER BY o.id",
        (target, sent_before))]


def mark_escalated(conn: psycopg.Connection, row_id: int) -> bool:
    """Record once that a row was escalated; False if another run did already."""
    return conn.execute("INSERT INTO outbox_escalations (outbox_id) VALUES (%s) ON CONFLICT DO NOTHING "
                        "RETURNING outbox_id", (row_id,)).fetchone() is not None


def queue_admin_mail(conn: psycopg.Connection, kind: str, to: list[str], subject: str, body: str) -> None:
    """Queue a message to the admins in the notifications the mail_deliver job sends, in the caller's transaction."""
    conn.execute("INSERT INTO notifications (kind, person_id, to_addrs, cc_addrs, subject, body) "
                 "VALUES (%s, NULL, %s, '{}', %s, %s)", (kind, to, subject, body))


def state_counts(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """(target, state, rows) of the rows still pending (intent, sent) and the dead letters: one scan of an index."""
    return conn.execute("SELECT target, state, count(*) FROM outbox WHERE state IN ('intent', 'sent', 'dead') "
                        "GROUP BY target, state").fetchall()


@dataclasses.dataclass(frozen=True)
class TargetSummary:
    """What the console and `outbox targets` show of one target."""

    key: str
    type: str
    enabled: bool
    backlog: int
    oldest_pending: datetime | None
    unconfirmed: int
    escalated: int
    dead: int
    last_success: datetime | None
    failures: int
    quarantined_at: datetime | None
    probe_at: datetime | None
    last_error: str | None


def summary(conn: psycopg.Connection) -> list[TargetSummary]:
    """Per target: backlog, oldest pending, sent but unconfirmed (and escalated), dead letters, last success,
    failures in a row and quarantine."""
    return [TargetSummary(*r) for r in conn.execute(
        "SELECT t.key, t.type, t.enabled, count(o.id) FILTER (WHERE o.state IN ('intent', 'sent')), "
        "min(o.created_at) FILTER (WHERE o.state IN ('intent', 'sent')), count(o.id) FILTER (WHERE o.state = 'sent'), "
        "count(e.outbox_id) FILTER (WHERE o.state = 'sent'), count(o.id) FILTER (WHERE o.state = 'dead'), "
        "greatest(h.last_success_at, max(o.confirmed_at)), coalesce(h.failures, 0), h.quarantined_at, h.probe_at, "
        "h.last_error FROM outbound_targets t LEFT JOIN outbox o ON o.target = t.key "
        "LEFT JOIN outbox_escalations e ON e.outbox_id = o.id LEFT JOIN outbound_health h ON h.target = t.key "
        "GROUP BY t.key, t.type, t.enabled, h.target ORDER BY t.key")]


@dataclasses.dataclass(frozen=True)
class Reconciliation:
    """A reconciliation run held for an admin (or confirmed, applied, discarded), with the plan it found."""

    id: int
    target: str
    state: str
    plan: dict
    reason: str
    created_at: datetime
    decided_by: str | None


_RECONCILIATION = "id, target, state, plan, reason, created_at, decided_by"
_PERSON_DN = ("LEFT JOIN person_external_ids x ON x.person_id = p.id AND x.source = 'ldap:dn'")


def open_reconciliation(conn: psycopg.Connection, target: str) -> Reconciliation | None:
    """The target's run that is held or confirmed (at most one), if any."""
    row = conn.execute(f"SELECT {_RECONCILIATION} FROM outbound_reconciliations WHERE target = %s "
                       "AND state IN ('held', 'confirmed')", (target,)).fetchone()
    return Reconciliation(*row) if row else None


def reconciliation(conn: psycopg.Connection, run_id: int) -> Reconciliation | None:
    row = conn.execute(f"SELECT {_RECONCILIATION} FROM outbound_reconciliations WHERE id = %s FOR UPDATE",
                       (run_id,)).fetchone()
    return Reconciliation(*row) if row else None


def held_reconciliations(conn: psycopg.Connection) -> list[Reconciliation]:
    return [Reconciliation(*r) for r in conn.execute(
        f"SELECT {_RECONCILIATION} FROM outbound_reconciliations WHERE state IN ('held', 'confirmed') ORDER BY id")]


def hold_reconciliation(conn: psycopg.Connection, target: str, plan: dict, reason: str) -> int:
    return scalar(conn, "INSERT INTO outbound_reconciliations (target, state, plan, reason) VALUES "
                        "(%s, 'held', %s, %s) RETURNING id", (target, Jsonb(plan), reason))


def decide_reconciliation(conn: psycopg.Connection, run_id: int, state: str, actor: str) -> None:
    conn.execute("UPDATE outbound_reconciliations SET state = %s, decided_by = %s, decided_at = now() "
                 "WHERE id = %s AND state = 'held'", (state, actor, run_id))


def finish_reconciliation(conn: psycopg.Connection, run_id: int) -> None:
    conn.execute("UPDATE outbound_reconciliations SET state = 'applied', applied_at = now() "
                 "WHERE id = %s AND state = 'confirmed'", (run_id,))


def expected_holders(conn: psycopg.Connection, resource: str) -> list[tuple[str, str | None, str | None]]:
    """(person id, userName, LDAP DN) of everyone holding an active grant on the resource."""
    return conn.execute(
        "SELECT p.id::text, p.user_name, x.external_id FROM grants g JOIN resources r ON r.id = g.resource_id "
        f"JOIN people p ON p.id = g.person_id {_PERSON_DN} WHERE r.key = %s AND g.state = 'active'",
        (resource,)).fetchall()


def pending_people(conn: psycopg.Connection, target: str) -> list[tuple[str, str | None, str | None]]:
    """(person id, userName, LDAP DN) of everyone with an unfinished outbox row at the target."""
    return conn.execute(
        "SELECT DISTINCT o.person_id::text, coalesce(p.user_name, o.user_name), x.external_id FROM outbox o "
        f"LEFT JOIN people p ON p.id = o.person_id {_PERSON_DN} "
        "WHERE o.target = %s AND o.state IN ('intent', 'sent')", (target,)).fetchall()


def people_names(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(person id, userName) of everyone Gatehouse knows."""
    return conn.execute("SELECT id::text, user_name FROM people WHERE user_name IS NOT NULL").fetchall()


def accounts_by_id(conn: psycopg.Connection, person_ids: list[str]) -> dict[str, tuple]:
    """person id → (userName, primary e-mail, LDAP DN)."""
    return {r[0]: r[1:] for r in conn.execute(
        f"SELECT p.id::text, p.user_name, p.primary_email, x.external_id FROM people p {_PERSON_DN} "
        "WHERE p.id = ANY(%s::uuid[])", (person_ids,))}
