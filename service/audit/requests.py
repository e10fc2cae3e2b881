"""Evidence bundles asked for from the console: queued by the auditor's request, built by the worker, downloaded.

A bundle of a long period holds every journal row of it: built inside a web request it would hold a worker and a
connection for minutes. So the request only queues (sql/027), the worker's evidence_export job builds each queued
bundle (evidence.export, a checkpoint signed first when a key is configured) into a temporary file, then stores
its bytes in parts, its SHA-256 and the journal row (who asked, when, the period, the hash) in one transaction.
"""

import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg

from service import db, journal
from service.audit import evidence
from service.db.query import one
from service.errors import DatabaseUnavailable
from service.journal import signers

log = logging.getLogger(__name__)
PART = 1 << 20
ACTOR = "job:evidence_export"


@dataclasses.dataclass(frozen=True)
class Request:
    id: int
    requested_by: str
    requested_at: datetime
    since: datetime
    until: datetime
    state: str
    finished_at: datetime | None
    row_count: int | None
    bytes: int | None
    sha256: str | None
    error: str | None


_COLUMNS = ("id, requested_by, requested_at, since, until, state, finished_at, row_count, bytes, sha256, error")


def queue(conn: psycopg.Connection, *, by: str, since: datetime, until: datetime) -> int:
    """Queue a bundle of [since, until) and journal the request, in the caller's transaction; its id."""
    (request_id,) = one(conn, "INSERT INTO evidence_requests (requested_by, since, until) VALUES (%s, %s, %s) "
                              "RETURNING id", (by, since, until))
    journal.append(conn, journal.Event(kind="admin", outcome="queued", actor=by, detail={
        "action": "evidence.request", "request": request_id, "since": since.isoformat(), "until": until.isoformat()}))
    return request_id


def recent(conn: psycopg.Connection, *, limit: int = 20) -> list[Request]:
    return [Request(*r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM evidence_requests ORDER BY id DESC LIMIT %s", (limit,))]


def get(conn: psycopg.Connection, request_id: int) -> Request | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM evidence_requests WHERE id = %s", (request_id,)).fetchone()
    return Request(*row) if row else None


def parts(conn: psycopg.Connection, request_id: int) -> Iterator[bytes]:
    """A done bundle's bytes, a part at a time (the caller holds `conn` for the iteration)."""
    count = one(conn, "SELECT count(*) FROM evidence_bundle_parts WHERE request_id = %s", (request_id,))[0]
    for n in range(count):
        yield bytes(one(conn, "SELECT data FROM evidence_bundle_parts WHERE request_id = %s AND part = %s",
                        (request_id, n))[0])


def _claim(conn: psycopg.Connection) -> Request | None:
    """Take the oldest queued request (another worker skips it), in a transaction of its own."""
    with conn.transaction():
        row = conn.execute(f"""
            UPDATE evidence_requests SET state = 'running', started_at = now()
            WHERE id = (SELECT id FROM evidence_requests WHERE state = 'queued' ORDER BY id
                        FOR UPDATE SKIP LOCKED LIMIT 1)
            RETURNING {_COLUMNS}""").fetchone()
    return Request(*row) if row else None


def build(conn: psycopg.Connection, request: Request, *, policy, signer: signers.Signer | None) -> None:
    """Build one claimed request's bundle and store it with its journal row; a failure is stored and journaled.
    `conn` is in autocommit: each step is a transaction of its own (the bundle's read is one snapshot)."""
    fd, path = tempfile.mkstemp(prefix="gatehouse-evidence-", suffix=".zip")
    os.close(fd)
    try:
        done = evidence.export(conn, path, since=request.since, until=request.until, policy=policy,
                               now=datetime.now(UTC), generated_by=request.requested_by, signer=signer)
        digest, size = evidence.file_sha256(path), os.path.getsize(path)
        with conn.transaction(), open(path, "rb") as f:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO evidence_bundle_parts (request_id, part, data) VALUES (%s, %s, %s)",
                                ((request.id, n, block) for n, block in enumerate(iter(lambda: f.read(PART), b""))))
            conn.execute("UPDATE evidence_requests SET state = 'done', finished_at = now(), row_count = %s, "
                         "bytes = %s, sha256 = %s WHERE id = %s", (done.rows, size, digest, request.id))
            journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=request.requested_by, detail={
                "action": "evidence.export", "request": request.id, "built_by": ACTOR,
                "requested_at": request.requested_at.isoformat(), "since": request.since.isoformat(),
                "until": request.until.isoformat(), "rows": done.rows, "first_seq": done.first_seq,
                "last_seq": done.last_seq, "bytes": size, "sha256": digest}))
    except (psycopg.Error, OSError, ValueError) as e:
        log.error("evidence request %s failed: %s", request.id, db.first_line(e))
        with conn.transaction():
            conn.execute("UPDATE evidence_requests SET state = 'failed', finished_at = now(), error = %s "
                         "WHERE id = %s", (db.first_line(e), request.id))
            journal.append(conn, journal.Event(kind="admin", outcome="failed", actor=request.requested_by, detail={
                "action": "evidence.export", "request": request.id, "built_by": ACTOR, "error": db.first_line(e)}))
    finally:
        os.unlink(path)


def evidence_job(services) -> dict:
    """The worker's evidence_export job: build every queued bundle, oldest first."""
    settings = services.settings
    built = failed = 0
    signer = signers.configured(settings)
    try:
        with db.connect(services.database.app_url, timeout=settings.db_timeout, autocommit=True) as conn:
            # The job runs in one runner at a time (its lock): a request still running lost its runner. Again.
            conn.execute("UPDATE evidence_requests SET state = 'queued' WHERE state = 'running'")
            while (request := _claim(conn)) is not None:
                build(conn, request, policy=services.policy, signer=signer)
                state = get(conn, request.id)
                built, failed = built + (state is not None and state.state == "done"), failed + (
                    state is None or state.state != "done")
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"evidence export: {db.first_line(e)}") from None
    return {"built": built, "failed": failed}
