"""The auditor's queries over the journal: search with keyset paging on seq, streaming reads, the revocation log.

Every search is one statement whose filters each have an index ordered by seq (sql/023_journal_search.sql), and
pages by seq (`before` for newest first, `after` for the oldest first, as a SIEM pulls), never by OFFSET: page
ten thousand costs what page one does.
"""

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime
from json.encoder import encode_basestring  # the C encoder: non-ASCII kept, as jsonb prints it
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from service.db.query import is_uuid, one

COLUMNS = ("seq", "ts", "kind", "subject", "resource", "outcome", "reasons", "detail", "actor", "policy_version",
           "request_id", "prev_hash", "hash")
PAGE = 50
MAX_PAGE = 1000
REVOKING = ("revoke", "suspend")


@dataclasses.dataclass(frozen=True)
class Search:
    """What an auditor filters on; every field optional, all of them combined with AND."""

    subject: str | None = None  # a person's id (the journal's subject)
    resource: str | None = None
    kinds: tuple[str, ...] = ()
    outcome: str | None = None
    reason: str | None = None  # a reason code, e.g. training_lapsed or review_missed:q3
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive


@dataclasses.dataclass(frozen=True)
class Entry:
    """A journal row with its fields as the hash covers them: `stamp` is ts in the canonical text, reasons and
    detail the jsonb text (parsed on demand for the pages; an export passes them through untouched)."""

    seq: int
    ts: datetime
    stamp: str
    kind: str
    subject: str | None
    resource: str | None
    outcome: str
    reasons_json: str
    detail_json: str
    actor: str
    policy_version: str | None
    request_id: str | None
    prev_hash: str
    hash: str

    @property
    def reasons(self) -> list:
        return json.loads(self.reasons_json)

    @property
    def detail(self) -> dict:
        return json.loads(self.detail_json)

    def as_json(self) -> str:
        """The row as one JSON object in the journal's column order: ts in the canonical text, reasons and detail
        as stored (jsonb text is JSON), hashes in hex. journal/offline.py re-checks it with no database."""
        return (f'{{"seq":{self.seq},"ts":"{self.stamp}","kind":{_js(self.kind)},"subject":{_js(self.subject)},'
                f'"resource":{_js(self.resource)},"outcome":{_js(self.outcome)},"reasons":{self.reasons_json},'
                f'"detail":{self.detail_json},"actor":{_js(self.actor)},"policy_version":{_js(self.policy_version)},'
                f'"request_id":{_js(self.request_id)},"prev_hash":"{self.prev_hash}","hash":"{self.hash}"}}')

    def canonical_fields(self) -> tuple[str | None, ...]:
        """The twelve fields journal.canonical() encodes, and the hash."""
        return (str(self.seq), self.stamp, self.kind, self.subject, self.resource, self.outcome, self.reasons_json,
                self.detail_json, self.actor, self.policy_version, self.request_id, self.prev_hash, self.hash)


def _js(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


_SELECT = sql.SQL("SELECT seq, ts, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), kind, "
                  "subject, resource, outcome, reasons::text, detail::text, actor, policy_version, request_id, "
                  "encode(prev_hash, 'hex'), encode(hash, 'hex') FROM public.journal WHERE ")


def _where(conn: psycopg.Connection, q: Search) -> tuple[sql.Composed, dict]:
    parts: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {}
    for column in ("subject", "resource", "outcome", "actor"):
        if getattr(q, column) is not None:
            parts.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)))
            params[column] = getattr(q, column)
    if q.kinds:
        parts.append(sql.SQL("kind = ANY(%(kinds)s)"))
        params["kinds"] = list(q.kinds)
    if q.reason is not None:
        parts.append(sql.SQL("reasons @> %(reason)s"))
        params["reason"] = Jsonb([{"code": q.reason}])
    if q.since is not None or q.until is not None:
        low, high = _seq_range(conn, q.since, q.until)
        parts.append(sql.SQL("seq BETWEEN %(low)s AND %(high)s"))
        params.update(low=low, high=high)
    if q.since is not None:
        parts.append(sql.SQL("ts >= %(since)s"))
        params["since"] = q.since
    if q.until is not None:
        parts.append(sql.SQL("ts < %(until)s"))
        params["until"] = q.until
    return sql.SQL(" AND ").join(parts), params


_SLACK = "interval '1 second'"  # ts and seq agree to within a commit's time: widen the seq range by that much


def _seq_range(conn: psycopg.Connection, since: datetime | None, until: datetime | None) -> tuple[int, int]:
    """The seq range that holds every row of [since, until), found through journal_ts_idx."""
    low, high = one(conn, f"""
        SELECT coalesce((SELECT min(seq) FROM public.journal WHERE ts >= %(since)s::timestamptz - {_SLACK}), 0),
               coalesce((SELECT max(seq) FROM public.journal WHERE ts < %(until)s::timestamptz + {_SLACK}), 0)""",
                    {"since": since or datetime.min, "until": until or datetime.max})
    return low or 0, high or 0


def page(conn: psycopg.Connection, q: Search, *, before: int | None = None, after: int | None = None,
         limit: int = PAGE) -> list[Entry]:
    """One page: newest first below `before`, or oldest first above `after` (the SIEM's order)."""
    where, params = _where(conn, q)
    if after is not None:
        where = sql.SQL("{} AND seq > %(cursor)s").format(where)
        order = sql.SQL("ORDER BY seq ASC")
        params["cursor"] = after
    else:
        if before is not None:
            where = sql.SQL("{} AND seq < %(cursor)s").format(where)
            params["cursor"] = before
        order = sql.SQL("ORDER BY seq DESC")
    params["limit"] = max(1, min(limit, MAX_PAGE))
    query = sql.SQL("{}{} {} LIMIT %(limit)s").format(_SELECT, where, order)
    return [Entry(*r) for r in conn.execute(query, params)]


def stream(conn: psycopg.Connection, q: Search, *, chunk: int = 5000) -> Iterator[Entry]:
    """Every matching row, oldest first, through a server-side cursor: memory stays one chunk, whatever the count.

    The caller holds `conn` in a transaction for the whole iteration (a named cursor lives in one).
    """
    where, params = _where(conn, q)
    with conn.cursor(name="journal_export") as cur:
        cur.itersize = chunk
        cur.execute(sql.SQL("{}{} ORDER BY seq").format(_SELECT, where), params)
        for row in cur:
            yield Entry(*row)


# Entry.as_json's line, built by PostgreSQL as it reads the row: row_to_json writes the columns in order with no
# spaces, escapes a string as Python's encoder does (non-ASCII kept) and prints jsonb as its text, so the export
# joins text it never parses.
_LINE = sql.SQL("""SELECT seq, policy_version, line FROM (SELECT j.*, (SELECT row_to_json(l)::text FROM (SELECT j.seq,
    to_char(j.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts, j.kind, j.subject, j.resource, j.outcome,
    j.reasons, j.detail, j.actor, j.policy_version, j.request_id, encode(j.prev_hash, 'hex') AS prev_hash,
    encode(j.hash, 'hex') AS hash) l) AS line FROM public.journal j) AS journal WHERE """)


def stream_lines(conn: psycopg.Connection, q: Search, *, chunk: int = 10000) -> Iterator[list[tuple[int, str | None,
                                                                                                    str]]]:
    """stream()'s rows as (seq, policy_version, Entry.as_json line), a chunk (a list) at a time: for the JSON Lines
    export and the evidence bundle, which write the line and look at nothing else."""
    where, params = _where(conn, q)
    with conn.cursor(name="journal_export_lines") as cur:
        cur.execute(sql.SQL("{}{} ORDER BY seq").format(_LINE, where), params)
        while rows := cur.fetchmany(chunk):
            yield rows


def copy_lines(conn: psycopg.Connection, q: Search, *, every: int = 1 << 20) -> Iterator[bytes]:
    """stream_lines()'s lines, newline-terminated, as blocks of about `every` bytes, through COPY ... TO STDOUT: no
    row passes through Python on its own. COPY's text format doubles each backslash (a JSON line holds no raw
    control character for it to escape otherwise), undone per block: a block ends at a row's end, so no pair is
    split."""
    where, params = _where(conn, q)
    select = psycopg.ClientCursor(conn).mogrify(sql.SQL("{}{} ORDER BY seq").format(_LINE, where), params)
    line_only = f"SELECT line FROM ({select}) AS t (seq, policy_version, line)"
    buffer = bytearray()
    with conn.cursor() as cur, cur.copy(f"COPY ({line_only}) TO STDOUT") as copy:
        for data in copy:
            buffer += data
            if len(buffer) >= every:
                yield bytes(buffer).replace(b"\\\\", b"\\")
                buffer.clear()
    if buffer:
        yield bytes(buffer).replace(b"\\\\", b"\\")


def explain(conn: psycopg.Connection, q: Search, *, before: int | None = None) -> str:
    """The plan of a page's query (for the tests and the bench: each filter must use its index)."""
    where, params = _where(conn, q)
    if before is not None:
        where = sql.SQL("{} AND seq < %(cursor)s").format(where)
        params["cursor"] = before
    query = sql.SQL("EXPLAIN {}{} ORDER BY seq DESC LIMIT {}").format(_SELECT, where, sql.Literal(PAGE))
    return "\n".join(r[0] for r in conn.execute(query, params))


# --- the revocation log ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Revocation:
    """A suspension or revocation, why, and whether the tools downstream confirmed it."""

    entry: Entry
    user_name: str | None
    display_name: str | None
    resources: list[str]
    downstream: list[dict]  # [{target, state, confirmed_at}] for the outbox rows the change wrote


# One query for a whole page: a row per (journal row, resource) it ended, each joined to the outbox rows it wrote.
_DOWNSTREAM = """
SELECT k.seq, jsonb_agg(jsonb_build_object('target', o.target, 'resource', o.resource, 'state', o.state,
                                           'attempts', o.attempts, 'confirmed_at', o.confirmed_at) ORDER BY o.id)
FROM unnest(%(seqs)s::bigint[], %(people)s::uuid[], %(resources)s::text[], %(ts)s::timestamptz[])
     AS k (seq, person_id, resource, ts)
JOIN public.outbox o ON o.person_id = k.person_id AND o.resource = k.resource AND o.op = 'disable'
                    AND o.created_at <= k.ts AND o.created_at > k.ts - interval '1 minute'
GROUP BY k.seq
"""


def revocations(conn: psycopg.Connection, q: Search, *, before: int | None = None,
                limit: int = PAGE) -> list[Revocation]:
    """The suspensions and revocations matching q (newest first), with the person and the downstream outcome.

    The outbox rows of a change are written in its transaction (sql/017's trigger): created at its start, at
    most a minute before the journal row's clock_timestamp().
    """
    entries = page(conn, dataclasses.replace(q, kinds=q.kinds or REVOKING), before=before, limit=limit)
    people = _names(conn, {e.subject for e in entries if e.subject})
    ended = {e.seq: [e.resource] if e.resource else [str(r) for r in e.detail.get("resources", [])] for e in entries}
    keys = [(e, r) for e in entries if e.subject and is_uuid(e.subject) for r in ended[e.seq]]
    downstream: dict[int, list[dict]] = dict(conn.execute(_DOWNSTREAM, {
        "seqs": [e.seq for e, _ in keys], "people": [e.subject for e, _ in keys], "resources": [r for _, r in keys],
        "ts": [e.ts for e, _ in keys]}).fetchall()) if keys else {}
    found = []
    for e in entries:
        user_name, display = people.get(e.subject or "", (None, None))
        found.append(Revocation(e, user_name, display, ended[e.seq], downstream.get(e.seq, [])))
    return found


def _names(conn: psycopg.Connection, ids: set[str]) -> dict[str, tuple[str, str | None]]:
    valid = [i for i in ids if is_uuid(i)]
    if not valid:
        return {}
    rows = conn.execute("SELECT id::text, user_name, display_name FROM people WHERE id = ANY(%s::uuid[])", (valid,))
    return {pid: (user_name, display) for pid, user_name, display in rows}


# --- the dashboard's figures -----------------------------------------------------------------------------------

def revocations_per_week(conn: psycopg.Connection, now: datetime, *, weeks: int = 12) -> list[tuple[str, str, int]]:
    """(ISO week, reason code, count) of suspensions and revocations, the last `weeks` weeks (journal_kind_ts_idx)."""
    return [(w, r, n) for w, r, n in conn.execute("""
        SELECT to_char(date_trunc('week', ts AT TIME ZONE 'UTC'), 'IYYY-"W"IW'),
               coalesce(split_part(reasons->0->>'code', ':', 1), outcome), count(*)
        FROM public.journal
        WHERE kind = ANY(%s) AND ts >= date_trunc('week', %s::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                                            - make_interval(weeks => %s - 1)
        GROUP BY 1, 2 ORDER BY 1, 2""", (list(REVOKING), now, weeks))]


def decisions_per_day(conn: psycopg.Connection, now: datetime, *, days: int = 14) -> list[tuple[str, str, int]]:
    """(day, allow|deny, count) of gateway checks, the last `days` days in UTC (journal_kind_ts_idx)."""
    return [(d, o, n) for d, o, n in conn.execute("""
        SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), outcome, count(*)
        FROM public.journal
        WHERE kind = 'check' AND ts >= date_trunc('day', %s::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                                       - make_interval(days => %s - 1)
        GROUP BY 1, 2 ORDER BY 1, 2""", (now, days))]


def campaign_progress(conn: psycopg.Connection, *, limit: int = 8) -> list[tuple[str, str, int]]:
    """(campaign, approved|revoked|missed|open, items) for the latest campaigns."""
    return [(k, s, n) for k, s, n in conn.execute("""
        SELECT c.key, CASE WHEN i.decision = 'approve' THEN 'approved' WHEN i.decision = 'revoke' THEN 'revoked'
                           WHEN c.due_at <= now() THEN 'missed' ELSE 'open' END, count(*)
        FROM (SELECT * FROM review_campaigns ORDER BY started_at DESC LIMIT %s) c
        JOIN review_items i ON i.campaign_id = c.id
        GROUP BY c.key, c.started_at, 2 ORDER BY c.started_at, 2""", (limit,))]


def person_by_ref(conn: psycopg.Connection, ref: str) -> tuple[str, str] | None:
    """(id, userName) of the person `ref` names, by id or by any of their logins; leavers included (the journal
    keeps naming them). A login is one person's (person_logins' key), so this never guesses between two."""
    row = conn.execute(
        "SELECT p.id::text, p.user_name FROM people p WHERE p.id = (SELECT person_id FROM person_logins "
        "WHERE login_key = login_key(%(r)s)) OR p.id::text = %(r)s LIMIT 1", {"r": ref}).fetchone()
    return (row[0], row[1]) if row else None


def head(conn: psycopg.Connection) -> tuple[int, str]:
    """(seq, hash) of the chain's head: how far the journal goes now."""
    seq, digest = one(conn, "SELECT seq, encode(hash, 'hex') FROM public.journal_head")
    return seq, digest
