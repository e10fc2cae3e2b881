"""The outbox's SQL: the rows due (the oldest unfinished one of each person and target), and each move of a row.

Every move writes its journal row first (kind outbound, detail.outbox = the row's id): the database refuses
a move without it (sql/017_outbox.sql, outbox_guard).
"""

import dataclasses
from datetime import datetime

import psycopg

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


def account(conn: psycopg.Connection, row: Row) -> tuple[str | None, str | None, str | None]:
    """The person's primary e-mail, LDAP DN and the target's remote id for them (each may be None)."""
    email, dn, remote_id = one(conn,
        "SELECT p.primary_email, x.external_id, a.remote_id FROM (SELECT %(pid)s::uuid AS id) k "
        "LEFT JOIN people p ON p.id = k.id "
        "LEFT JOIN person_external_ids x ON x.person_id = k.id AND x.source = 'ldap:dn' "
        "LEFT JOIN outbound_accounts a ON a.person_id = k.id AND a.target = %(target)s",
        {"pid": row.person_id, "target": row.target})
    return email, dn, remote_id


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


def summary(conn: psycopg.Connection) -> list[tuple]:
    """Per target: backlog, oldest pending, sent but unconfirmed, dead letters, last confirmation."""
    return conn.execute(
        "SELECT t.key, t.type, t.enabled, count(*) FILTER (WHERE o.state IN ('intent', 'sent')), "
        "min(o.created_at) FILTER (WHERE o.state IN ('intent', 'sent')), count(*) FILTER (WHERE o.state = 'sent'), "
        "count(*) FILTER (WHERE o.state = 'dead'), max(o.confirmed_at) "
        "FROM outbound_targets t LEFT JOIN outbox o ON o.target = t.key GROUP BY t.key, t.type, t.enabled "
        "ORDER BY t.key").fetchall()
