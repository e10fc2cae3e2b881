"""The decision journal: append events, batch journal-only appends, verify the chain.

Rows are completed by the database (sql/002_journal.sql): seq, ts, prev_hash
and hash are set by a trigger under the head-row lock, so every appender, in
any process, extends one linear gapless chain. This module reproduces the
canonical encoding independently to verify it.
"""

import dataclasses
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg.types.json import Jsonb

from service import metrics
from service.db import first_line
from service.db.query import one, required
from service.db.tx import current_request_id
from service.errors import DatabaseUnavailable, JournalBroken
from service.journal import merkle

log = logging.getLogger(__name__)

KINDS = ("check", "grant", "revoke", "suspend", "restore", "sync", "review", "notify", "admin", "job", "outbound")
GENESIS = bytes(32)
FORMAT = "gatehouse-journal-v1"
TAIL_MISSING = "GJ001"  # journal_chain() (sql/009_journal_hardening.sql): rows behind the head are gone

_INSERT = """
INSERT INTO public.journal (kind, subject, resource, outcome, reasons, detail, actor, policy_version, request_id)
VALUES (%(kind)s, %(subject)s, %(resource)s, %(outcome)s, %(reasons)s, %(detail)s, %(actor)s,
        %(policy_version)s, %(request_id)s)
RETURNING seq, ts, hash
"""

# Many events in one statement (group commit): rows are inserted, and so
# chained, in ordinality order, which is the order of the batch. The arrays go
# in the binary format (%b): psycopg writes a text-format array element by
# element through a regular expression (its quoting), 15 times slower (356 ms
# against 23 ms for 5,000 rows, measured); a review deadline's 100,000 journal
# rows spent 15 s of its 47 there.
_INSERT_MANY = """
INSERT INTO public.journal (kind, subject, resource, outcome, reasons, detail, actor, policy_version, request_id)
SELECT kind, subject, resource, outcome, reasons::jsonb, detail::jsonb, actor, policy_version, request_id
FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
            %b::text[]) WITH ORDINALITY
     AS e(kind, subject, resource, outcome, reasons, detail, actor, policy_version, request_id, n)
ORDER BY n
RETURNING seq, ts, hash
"""

# The fields in canonical order, as text, exactly as the hash covers them.
_CANONICAL_SELECT = """
SELECT seq::text, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), kind, subject, resource,
       outcome, reasons::text, detail::text, actor, policy_version, request_id,
       encode(prev_hash, 'hex'), encode(hash, 'hex')
FROM public.journal WHERE journal.seq > %s ORDER BY journal.seq
"""


@dataclasses.dataclass(frozen=True)
class Event:
    """One thing that happened, as the caller knows it (the database adds seq, ts and hashes)."""

    kind: str
    outcome: str
    actor: str
    subject: str | None = None
    resource: str | None = None
    reasons: tuple = ()
    detail: dict = dataclasses.field(default_factory=dict)
    policy_version: str | None = None
    request_id: str | None = dataclasses.field(default_factory=current_request_id)  # of the web request

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown journal kind {self.kind!r}")

    def columns(self) -> tuple:
        """The event as the text values _INSERT_MANY takes."""
        return (self.kind, self.subject, self.resource, self.outcome, json.dumps(list(self.reasons)),
                json.dumps(dict(self.detail)), self.actor, self.policy_version, self.request_id)

    def params(self) -> dict:
        return {
            "kind": self.kind, "subject": self.subject, "resource": self.resource, "outcome": self.outcome,
            "reasons": Jsonb(list(self.reasons)), "detail": Jsonb(dict(self.detail)), "actor": self.actor,
            "policy_version": self.policy_version, "request_id": self.request_id,
        }


@dataclasses.dataclass(frozen=True)
class Receipt:
    """Where an event landed in the chain."""

    seq: int
    ts: object
    hash: str


def append(conn: psycopg.Connection, event: Event) -> Receipt:
    """Append inside the caller's transaction: the event commits or vanishes with the change.

    Append last in a transaction: the chain's head stays locked until commit.
    """
    try:
        seq, ts, digest = one(conn, _INSERT, event.params())
    except psycopg.Error as e:
        broken = _broken(e)
        if broken is None:
            raise
        raise broken from None
    return Receipt(seq, ts, digest.hex())


def append_many(conn: psycopg.Connection, events: Sequence[Event], *, chunk: int = 500) -> int:
    """Append many events in the caller's transaction, chained in the order given, a statement per `chunk`.

    For a job that writes thousands of rows at once (a review deadline): one round trip per chunk instead of one
    per row. Last in the transaction, as append().
    """
    count = 0
    for start in range(0, len(events), chunk):
        columns = [list(c) for c in zip(*(e.columns() for e in events[start:start + chunk]), strict=False)]
        try:
            count += conn.execute(_INSERT_MANY, columns).rowcount
        except psycopg.Error as e:
            broken = _broken(e)
            if broken is None:
                raise
            raise broken from None
    return count


def _broken(e: Exception) -> JournalBroken | None:
    """journal_chain()'s refusal to append behind a deleted tail, as our error; None for anything else."""
    if isinstance(e, psycopg.Error) and e.sqlstate == TAIL_MISSING:
        return JournalBroken(e.diag.message_primary)
    return None


def check_tail(conn: psycopg.Connection) -> None:
    """Raise JournalBroken, worded as journal_chain() words it, if rows behind the head are missing.

    Two index lookups: cheap enough for every /readyz.
    """
    head_seq, last_seq = one(conn,
        "SELECT h.seq, coalesce((SELECT max(j.seq) FROM public.journal j), 0) FROM public.journal_head h")
    if last_seq < head_seq:
        raise JournalBroken(f"the journal's head is at seq {head_seq} but its last row is {last_seq}: "
                            "run gatehouse journal verify")


@dataclasses.dataclass(frozen=True)
class Row:
    """A journal row as the people pages show it."""

    seq: int
    ts: object
    kind: str
    outcome: str
    actor: str
    resource: str | None
    reasons: list
    detail: dict


def recent_about(conn: psycopg.Connection, subject: str, *, limit: int = 25) -> list[Row]:
    """The latest rows whose subject is `subject` (a person's id), newest first (journal_subject_idx)."""
    rows = conn.execute("SELECT seq, ts, kind, outcome, actor, resource, reasons, detail FROM public.journal "
                        "WHERE subject = %s ORDER BY seq DESC LIMIT %s", (subject, limit)).fetchall()
    return [Row(*r) for r in rows]


class _Pending:
    __slots__ = ("event", "done", "receipt", "error")

    def __init__(self, event: Event):
        self.event = event
        self.done = threading.Event()
        self.receipt: Receipt | None = None
        self.error: Exception | None = None


class JournalWriter:
    """Group commit for journal-only appends (decisions that change nothing else).

    Callers block until the transaction carrying their row has committed. A
    flusher commits all rows queued meanwhile in one transaction, so concurrent
    requests share an fsync instead of queueing on the chain lock one by one.
    Two flushers, each with its own connection, overlap one batch's commit with
    the next batch's preparation; the chain lock keeps their batches in line.
    Each batch is one autocommit INSERT: one round trip, and the chain's head is
    locked only while the server inserts and flushes it.
    """

    def __init__(self, url: str, *, max_batch: int = 500, timeout: float = 5.0, flushers: int = 2):
        self._url = url
        self._max_batch = max_batch
        self._timeout = timeout
        self._flushers = flushers
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()

    def record(self, event: Event) -> Receipt:
        """Append and wait until durable; DatabaseUnavailable if it is not within the timeout."""
        self._ensure_started()
        pending = _Pending(event)
        self._queue.put(pending)
        if not pending.done.wait(self._timeout):
            raise DatabaseUnavailable("the journal did not commit in time")
        if pending.error is not None:
            raise pending.error
        return required(pending.receipt, "the journal's receipt")

    def close(self) -> None:
        """Flush what is queued and stop the flushers."""
        with self._start_lock:
            threads, self._threads = self._threads, []
            for _ in threads:
                self._queue.put(None)
            for t in threads:
                t.join(timeout=self._timeout)

    def _ensure_started(self) -> None:
        if not self._threads:
            with self._start_lock:
                if not self._threads:
                    self._threads = [threading.Thread(target=self._run, name=f"journal-writer-{n}", daemon=True)
                                     for n in range(self._flushers)]
                    for t in self._threads:
                        t.start()

    def _run(self) -> None:
        conn: list[psycopg.Connection | None] = [None]
        try:
            while self._flush_one(conn):
                pass
        finally:
            if conn[0] is not None:
                conn[0].close()

    def _flush_one(self, conn: list) -> bool:
        """Commit one batch of whatever is queued; False when told to stop."""
        first = self._queue.get()
        if first is None:
            return False
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # leave the stop for after this batch
                self._queue.put(None)
                break
            batch.append(item)
        self._commit(batch, conn)
        return True

    def _commit(self, batch: list[_Pending], holder: list) -> None:
        try:
            if holder[0] is None or holder[0].closed:
                # Autocommit: the INSERT is its own transaction, committed by the server as it ends, in one
                # round trip; the chain's head stays locked for the insert and the fsync only, never while
                # a BEGIN or a COMMIT travels between this thread and the server.
                holder[0] = psycopg.connect(self._url, connect_timeout=max(1, int(self._timeout)),
                                            application_name="gatehouse-journal", autocommit=True)
            conn = holder[0]
            started = time.perf_counter()
            columns = [list(c) for c in zip(*(p.event.columns() for p in batch), strict=False)]
            rows = conn.execute(_INSERT_MANY, columns).fetchall()
            metrics.journal_batch(len(batch), time.perf_counter() - started)
            rows.sort()  # seq follows the batch's order
            for p, (seq, ts, digest) in zip(batch, rows, strict=True):
                p.receipt = Receipt(seq, ts, digest.hex())
        except Exception as e:  # any failure: every waiter in the batch is told, none is lost silently
            log.warning("journal batch of %d failed: %s", len(batch), first_line(e))
            error: JournalBroken | DatabaseUnavailable | None = _broken(e)
            if error is None and holder[0] is not None:  # the connection may be at fault: start anew
                holder[0].close()
                holder[0] = None
            error = error or DatabaseUnavailable(f"the journal could not be written: {first_line(e)}")
            for p in batch:
                p.receipt, p.error = None, error
        finally:
            for p in batch:
                p.done.set()


# --- verification ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verification:
    ok: bool
    count: int
    head: str
    bad_seq: int | None = None
    problem: str | None = None


def _field(v: str | None) -> str:
    if v is None:
        return "|-"
    return f"|{len(v) if v.isascii() else len(v.encode())}:{v}"


def canonical(fields: Iterable[str | None]) -> bytes:
    """The canonical encoding the hash covers (see sql/009_journal_hardening.sql and README.md)."""
    return (FORMAT + "".join(map(_field, fields))).encode()


def check_rows(rows: Iterator[tuple], *, after_seq: int = 0, after_hash: str = GENESIS.hex()) -> Verification:
    """Walk rows in the _CANONICAL_SELECT shape; stop at the first that breaks the chain."""
    expected_seq, prev, count = after_seq + 1, after_hash, 0
    sha256, encode = hashlib.sha256, canonical
    for row in rows:
        seq = int(row[0])
        if seq != expected_seq:
            return Verification(False, count, prev, expected_seq, f"seq {expected_seq} is missing")
        if row[11] != prev:
            return Verification(False, count, prev, seq, "prev_hash does not match the previous row")
        if sha256(encode(row[:12])).hexdigest() != row[12]:
            return Verification(False, count, prev, seq, "hash does not match the row's content")
        prev, expected_seq, count = row[12], seq + 1, count + 1
    return Verification(True, count, prev)


def verify(conn: psycopg.Connection, *, batch: int = 20000, expect: Iterable[tuple[int, str]] = (),
           checkpoints: Iterable[tuple[int, bytes, str]] = ()) -> Verification:
    """Verify the whole chain, its head, each (seq, hash) anchor in `expect`, then each checkpoint, in one snapshot.

    An anchor is a row's hash written down earlier, outside the database: the
    chain alone cannot show a rewrite whose author recomputed every later hash.
    A checkpoint (tree size, Merkle root, a name to report it by) is an anchor
    for every row up to its size at once: the root is recomputed from the rows.
    """
    checkpoints = list(checkpoints)
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        roots: dict[int, bytes] = {}
        result = _walk(conn, batch, roots if checkpoints else None, {size for size, _, _ in checkpoints})
        if not result.ok:
            return result
        head_seq, head_hash = one(conn, "SELECT seq, encode(hash, 'hex') FROM public.journal_head")
        if head_seq != result.count:
            return Verification(False, result.count, result.head, result.count + 1,
                                f"the chain ends at seq {result.count} but its head says {head_seq}")
        if head_hash != result.head:
            return Verification(False, result.count, result.head, result.count,
                                "hash does not match the one the head recorded")
        expect = list(expect)
        found: dict[int, str] = dict(conn.execute(
            "SELECT seq, encode(hash, 'hex') FROM public.journal WHERE seq = ANY(%s)", ([seq for seq, _ in expect],)))
    for seq, digest in expect:
        if found.get(seq) != digest:
            why = f"hash is {found[seq]}" if seq in found else "row is missing"
            return dataclasses.replace(result, ok=False, bad_seq=seq, problem=f"{why}, expected {digest} (--expect)")
    for size, root, name in checkpoints:
        if size > result.count:
            return dataclasses.replace(result, ok=False, bad_seq=result.count + 1,
                                       problem=f"{name} covers {size} rows but the chain has {result.count}")
        if roots[size] != root:
            return dataclasses.replace(result, ok=False, bad_seq=size, problem=(
                f"the Merkle root of rows 1..{size} is {roots[size].hex()}, but {name} signed {root.hex()}"))
    return result


def _walk(conn: psycopg.Connection, batch: int, roots: dict[int, bytes] | None = None,
          sizes: set[int] | frozenset[int] = frozenset()) -> Verification:
    """Check every row with a server-side cursor (constant memory), fetching the next batch meanwhile.

    With `roots`, also feed each row's hash to a Merkle frontier and note its root at each of `sizes`.
    """
    frontier = merkle.Frontier() if roots is not None else None
    if roots is not None and 0 in sizes:
        roots[0] = merkle.EMPTY_ROOT
    total, head = 0, GENESIS.hex()
    with conn.cursor(name="journal_verify") as cur, ThreadPoolExecutor(1) as fetcher:
        cur.execute(_CANONICAL_SELECT, (0,))
        pending = fetcher.submit(cur.fetchmany, batch)
        while rows := pending.result():
            pending = fetcher.submit(cur.fetchmany, batch)
            part = check_rows(iter(rows), after_seq=total, after_hash=head)
            if not part.ok:
                pending.result()
                return dataclasses.replace(part, count=total + part.count)
            total, head = total + part.count, part.head
            if frontier is not None and roots is not None:
                for row in rows:
                    frontier.append(bytes.fromhex(row[12]))
                    if frontier.size in sizes:
                        roots[frontier.size] = frontier.root()
    return Verification(True, total, head)
