"""Training: completions, the sweep's view of each person, lapses, reminders and the e-mail outbox."""

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime

import psycopg
from psycopg import sql

from service.identity import people
from service.training.plan import Grant, Standing


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One queued e-mail not sent yet."""

    id: str
    to: list[str]
    cc: list[str]
    subject: str
    body: str
    html: str | None = None
    kind: str = ""
    person_id: str | None = None


# The import's own rule, wider than a check's default: learning systems often know only the employee number.
IMPORT_IDENTIFIERS = ("user_name", "email", "employee_number")

# -- resolve_people -- each reference as store.people.matching finds it, through IMPORT_IDENTIFIERS.
_RESOLVE = sql.SQL("""
SELECT r.ref, p.id::text, p.deleted, p.ambiguous
FROM unnest(%b::text[]) AS r (ref)
LEFT JOIN LATERAL ({match}) p ON true
""").format(match=people.matching(sql.SQL("r.ref"), IMPORT_IDENTIFIERS))

# -- lock_people -- in id order, so concurrent writers never deadlock.
_LOCK = "SELECT id FROM people WHERE id = ANY(%b::uuid[]) ORDER BY id FOR NO KEY UPDATE"

_INSERT_COMPLETION = """
INSERT INTO training_completions (person_id, course, completed_at, source, source_id)
VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source, source_id) DO NOTHING RETURNING id::text
"""

# -- load_standing -- active people holding an active or training-suspended grant, with their
# latest completion per course and the lapses and reminders already recorded.
_STANDING = sql.SQL("""
SELECT p.id::text, coalesce(p.display_name, p.given_name, p.user_name), p.primary_email, m.primary_email,
       p.started_at, p.department, gr.grants, c.courses, c.completed, l.courses, l.at, rm.courses, rm.at, rm.days
FROM people p
LEFT JOIN people m ON m.id = p.manager_id AND m.deleted_at IS NULL
CROSS JOIN LATERAL (
    SELECT array_agg(ARRAY[g.id::text, r.key, g.state, g.reason] ORDER BY r.key) AS grants
    FROM grants g JOIN resources r ON r.id = g.resource_id
    WHERE g.person_id = p.id
      AND (g.state = 'active' OR (g.state = 'suspended' AND g.reason LIKE 'training\\_lapsed:%%'))
) gr
CROSS JOIN LATERAL (
    SELECT array_agg(t.course) AS courses, array_agg(t.completed_at) AS completed
    FROM (SELECT course, max(completed_at) AS completed_at FROM training_completions
          WHERE person_id = p.id GROUP BY course) t
) c
CROSS JOIN LATERAL (
    SELECT array_agg(course) AS courses, array_agg(lapses_at) AS at FROM training_lapses WHERE person_id = p.id
) l
CROSS JOIN LATERAL (
    SELECT array_agg(course) AS courses, array_agg(lapses_at) AS at, array_agg(days_before) AS days
    FROM training_reminders WHERE person_id = p.id
) rm
WHERE p.deleted_at IS NULL AND p.active AND gr.grants IS NOT NULL {only}
ORDER BY p.id
""")
_ONLY = sql.SQL("AND p.id = ANY(%(ids)s::uuid[])")

_RESTORE = """
UPDATE grants SET state = 'active', reason = NULL, updated_at = now()
WHERE id = ANY(%s::uuid[]) AND state = 'suspended' AND reason LIKE 'training\\_lapsed:%%'
"""
_SUSPEND = "UPDATE grants SET state = 'suspended', reason = %s, updated_at = now() WHERE id = %s AND state = 'active'"
_RECORD_LAPSE = """
INSERT INTO training_lapses (person_id, course, lapses_at, state, resources) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
_RECORD_REMINDER = """
INSERT INTO training_reminders (person_id, course, lapses_at, days_before) VALUES (%s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
_QUEUE = """
INSERT INTO notifications (kind, person_id, to_addrs, cc_addrs, subject, body, html)
VALUES (%s, %s, %b, %b, %s, %s, %s)
"""  # the address arrays binary: psycopg quotes a text-format array's elements through a regular expression
# Waiting, and not claimed by a run lately: a claim's lease doubles with each attempt (2, 4, ... 60 minutes), so a
# failure is retried with backoff and a message a runner took is not taken again while that runner sends it.
_CLAIMABLE = """
sent_at IS NULL AND attempts < %(attempts)s
AND (claimed_at IS NULL OR claimed_at < now() - least(interval '1 minute' * power(2, attempts), interval '1 hour'))
"""
_UNSENT = f"""
SELECT id::text, to_addrs, cc_addrs, subject, body, html, kind, person_id::text FROM notifications
WHERE {_CLAIMABLE} ORDER BY created_at, id LIMIT %(limit)s
"""
_CLAIM = f"UPDATE notifications SET claimed_at = now(), attempts = attempts + 1 WHERE id = %(id)s AND {_CLAIMABLE} " \
    "RETURNING 1"
_SENT = "UPDATE notifications SET sent_at = now(), last_error = NULL WHERE id = %s"
# A failure after one or two attempts is retried by the next run (a blip); later ones wait out the claim's lease.
_FAILED = """
UPDATE notifications SET last_error = %s, claimed_at = CASE WHEN attempts <= 2 THEN NULL ELSE claimed_at END
WHERE id = ANY(%s::uuid[])
"""


@dataclasses.dataclass(frozen=True)
class Named:
    """Whom a reference names: one person (deleted, perhaps), several live people (`ambiguous`), or nobody."""

    person_id: str | None
    deleted: bool = False
    ambiguous: tuple[str, ...] = ()


def resolve_people(conn: psycopg.Connection, refs: Collection[str]) -> dict[str, Named]:
    """Whom each reference names, for every reference given."""
    rows = conn.execute(_RESOLVE, (sorted(refs),)).fetchall() if refs else []
    return {ref: Named(pid, bool(deleted), tuple(ambiguous or ())) for ref, pid, deleted, ambiguous in rows}


def lock_people(conn: psycopg.Connection, ids: Collection[str]) -> None:
    """Lock the people `ids` (in id order) until the transaction ends."""
    conn.execute(_LOCK, (sorted(set(ids)),))


def insert_completion(conn: psycopg.Connection, person_id: str, course: str, completed_at: datetime, source: str,
                      source_id: str) -> bool:
    """True if recorded; False if (source, source_id) was recorded before."""
    inserted = conn.execute(_INSERT_COMPLETION, (person_id, course, completed_at, source, source_id))
    return inserted.fetchone() is not None


# Compliance's facts for everyone at once, set-wise: each person's held resources and latest completion per course
# aggregated over the whole tables (hash joins), not looked up person by person as _STANDING's laterals do.
_COMPLIANCE = sql.SQL("""
SELECT p.id::text, coalesce(p.display_name, p.given_name, p.user_name), p.started_at, p.department, g.held,
       c.courses, c.completed
FROM (SELECT g.person_id, array_agg(r.key ORDER BY r.key) AS held
      FROM grants g JOIN resources r ON r.id = g.resource_id
      WHERE g.state = 'active' OR (g.state = 'suspended' AND g.reason LIKE 'training\\_lapsed:%')
      GROUP BY g.person_id) g
JOIN people p ON p.id = g.person_id
LEFT JOIN (SELECT person_id, array_agg(course) AS courses, array_agg(completed_at) AS completed
           FROM (SELECT person_id, course, max(completed_at) AS completed_at FROM training_completions
                 GROUP BY person_id, course) t
           GROUP BY person_id) c ON c.person_id = p.id
WHERE p.deleted_at IS NULL AND p.active
""")


@dataclasses.dataclass(frozen=True)
class Holding:
    """What compliance needs of a person: the resources they hold (or held until a lapse) and their completions."""

    person_id: str
    name: str
    started_at: datetime
    department: str | None
    held: tuple[str, ...]
    completions: dict[str, datetime]


def compliance_query() -> sql.Composed:
    return sql.Composed([_COMPLIANCE])


def load_holdings(conn: psycopg.Connection) -> list[Holding]:
    """Every active person holding a resource (active, or suspended for a training lapse), with completions. In
    binary: 100,000 rows of arrays decode faster than their text."""
    return [Holding(pid, name, started, department, tuple(held), dict(zip(courses or (), completed or (), strict=True)))
            for pid, name, started, department, held, courses, completed in conn.execute(_COMPLIANCE, binary=True)]


def load_standing(conn: psycopg.Connection, ids: Sequence[str] | None = None) -> list[Standing]:
    """Everyone the sweep looks at, or only the people `ids`."""
    query = _STANDING.format(only=_ONLY if ids is not None else sql.SQL(""))
    return [_standing(*row) for row in conn.execute(query, {"ids": list(ids or ())})]


def _standing(pid, name, email, manager_email, started_at, department, grants, courses, completed,
              lapse_courses, lapse_at, rem_courses, rem_at, rem_days) -> Standing:
    return Standing(
        person_id=pid, name=name, email=email, manager_email=manager_email, started_at=started_at,
        department=department, grants=tuple(Grant(*g) for g in grants),
        completions=dict(zip(courses or (), completed or (), strict=True)),
        lapses=frozenset(zip(lapse_courses or (), lapse_at or (), strict=True)),
        reminders=frozenset(zip(rem_courses or (), rem_at or (), rem_days or (), strict=True)))


def restore(conn: psycopg.Connection, grant_ids: Sequence[str]) -> None:
    """Reactivate the grants `grant_ids` that are suspended for a training lapse."""
    conn.execute(_RESTORE, (list(grant_ids),))


def suspend(conn: psycopg.Connection, grant_id: str, reason: str) -> None:
    """Suspend the grant `grant_id` if it is active."""
    conn.execute(_SUSPEND, (reason, grant_id))


def record_lapse(conn: psycopg.Connection, person_id: str, course: str, lapses_at: datetime, state: str,
                 resources: Sequence[str]) -> None:
    """Record a lapse once (a second record of the same lapse is a no-op)."""
    conn.execute(_RECORD_LAPSE, (person_id, course, lapses_at, state, resources))


def record_reminder(conn: psycopg.Connection, person_id: str, course: str, lapses_at: datetime,
                    days_before: int) -> None:
    """Record a reminder as queued, once."""
    conn.execute(_RECORD_REMINDER, (person_id, course, lapses_at, days_before))


def queue_mail(conn: psycopg.Connection, kind: str, person_id: str | None, to: Sequence[str], cc: Sequence[str],
               subject: str, body: str, html: str | None = None) -> None:
    """Queue an e-mail in the outbox (sent after commit)."""
    conn.execute(_QUEUE, (kind, person_id, list(to), list(cc), subject, body, html))


def queue_mails(conn: psycopg.Connection, rows: Sequence[tuple]) -> None:
    """Queue many e-mails: rows of (kind, person_id, to, cc, subject, body, html)."""
    with conn.cursor() as cur:
        cur.executemany(_QUEUE, [(k, p, list(to), list(cc), s, b, h) for k, p, to, cc, s, b, h in rows])


def unsent_mail(conn: psycopg.Connection, attempts: int, limit: int) -> list[Outgoing]:
    """Queued e-mail tried fewer than `attempts` times and not claimed lately, oldest first, at most `limit`."""
    return [Outgoing(*row) for row in conn.execute(_UNSENT, {"attempts": attempts, "limit": limit}).fetchall()]


def claim_mail(conn: psycopg.Connection, mail_id: str, attempts: int) -> bool:
    """Take one e-mail for sending, in a transaction of its own; False if another run has it (or sent it)."""
    with conn.transaction():
        return conn.execute(_CLAIM, {"id": mail_id, "attempts": attempts}).fetchone() is not None


def mark_sent(conn: psycopg.Connection, mail_id: str) -> None:
    """Mark one e-mail sent (in the caller's transaction, with its journal row)."""
    conn.execute(_SENT, (mail_id,))


def mark_failed(conn: psycopg.Connection, mail_ids: Sequence[str], error: str) -> None:
    """Count a failed attempt on the e-mails `mail_ids`, in a transaction of its own."""
    with conn.transaction():
        conn.execute(_FAILED, (error, list(mail_ids)))


def completions_of(conn: psycopg.Connection, person_id: str) -> list[tuple[str, datetime, str]]:
    """(course, completed_at, source) of every completion of one person, newest first."""
    return conn.execute("SELECT course, completed_at, source FROM training_completions WHERE person_id = %s "
                        "ORDER BY completed_at DESC, course", (person_id,)).fetchall()


def latest_completions(conn: psycopg.Connection, person_id: str) -> dict[str, datetime]:
    """The latest completion of each course of one person."""
    return dict(conn.execute("SELECT course, max(completed_at) FROM training_completions WHERE person_id = %s "
                             "GROUP BY course", (person_id,)).fetchall())
