"""A journal with a known story for the audit tests: written through journal.append, as the service writes it."""

from datetime import UTC, datetime, timedelta

import psycopg

from service import journal
from service.journal import Event
from tests.support.people import person, sql


def story(database) -> dict:
    """ivo's VPN: granted, checked (allow), suspended for training, restored, checked; mia revoked at a review's
    deadline; a check for nobody denied; 120 checks of ivo's to page through. Returns ids and seqs."""
    ids = {"ivo": person(database, "ivo.petrov", "ivo@example.com", display_name="Ivo Petrov"),
           "mia": person(database, "mia", "mia@example.com")}
    sql(database, "INSERT INTO person_roles (person_id, role, granted_by) VALUES (%s, 'auditor', 'test')",
        (person(database, "audra", "audra@example.com"),))
    ids["audra"] = sql(database, "SELECT id::text FROM people WHERE user_name = 'audra'")[0][0]
    events = [
        Event(kind="grant", outcome="active", actor="admin:ada@example.com", subject=ids["ivo"], resource="vpn",
              reasons=({"code": "admin", "text": "granted by admin"},), detail={"user": "ivo.petrov"}),
        Event(kind="check", outcome="allow", actor="client:vpn-gw", subject=ids["ivo"], resource="vpn",
              detail={"user": "ivo.petrov"}),
        Event(kind="suspend", outcome="training_lapsed", actor="system:training-sweep", subject=ids["ivo"],
              reasons=({"code": "training_lapsed:security-awareness", "text": "Security awareness lapsed"},),
              detail={"resources": ["vpn"], "lapses": [{"course": "security-awareness", "state": "lapsed",
                                                        "lapses_at": "2026-11-01T00:00:00+00:00"}]}),
        Event(kind="restore", outcome="training_completed", actor="client:lms", subject=ids["ivo"],
              detail={"resources": ["vpn"]}),
        Event(kind="revoke", outcome="review_missed", actor="system:reviews", subject=ids["mia"], resource="git",
              reasons=({"code": "review_missed:q4", "text": "not re-approved by the deadline"},),
              detail={"campaign": "q4", "reviewer": "hana@example.com"}),
        Event(kind="check", outcome="deny", actor="client:vpn-gw", resource="vpn",
              reasons=({"code": "person_unknown", "text": "no such person"},), detail={"user": "=cmd|' /C calc'!A0"}),
    ] + [Event(kind="check", outcome="allow", actor="client:vpn-gw", subject=ids["ivo"], resource="vpn",
               detail={"user": "ivo.petrov", "n": n}) for n in range(120)]
    with psycopg.connect(database.app_url) as conn:
        ids["seqs"] = [journal.append(conn, e).seq for e in events]
    return ids


def at(seq_ts: datetime, **delta) -> str:
    return (seq_ts + timedelta(**delta)).astimezone(UTC).isoformat()


# Rows of every shape the fast way must handle or hand over: NULLs, escapes, non-ASCII, numbers with a scale,
# a string ending in `,` before a quote, nested objects with keys out of jsonb's order.
_ODD_ROWS = """
INSERT INTO journal (kind, subject, resource, outcome, reasons, detail, actor, policy_version, request_id)
SELECT 'check', CASE WHEN i %% 5 = 0 THEN NULL ELSE 'person-' || i END, CASE WHEN i %% 3 = 0 THEN NULL ELSE 'vpn' END,
       CASE WHEN i %% 7 = 0 THEN 'deny' ELSE 'allow' END,
       CASE WHEN i %% 7 = 0 THEN '[{"code": "training_lapsed:x,", "why": "a \\"quote\\""}]'::jsonb ELSE '[]' END,
       jsonb_build_object('n', i, 'amount', 1.50, 'name', CASE WHEN i %% 4 = 0 THEN 'Zoë "z" ,"detail":' ELSE 'a' END,
                          'nested', jsonb_build_object('bbb', 1, 'a', ARRAY[1, 2])),
       CASE WHEN i %% 11 = 0 THEN 'admin:ä\\tb' ELSE 'client:vpn-gw' END, CASE WHEN i %% 2 = 0 THEN 'v1' END,
       'req-' || i
FROM generate_series(1, %s) i
"""


def odd_rows(database, count: int) -> None:
    """`count` journal rows of every odd shape an export and its offline check must carry byte for byte."""
    with psycopg.connect(database.app_url) as conn:
        conn.execute(_ODD_ROWS, (count,))
