"""Jobs: a registry (name → function of the services), one runner per job across replicas, every run journaled.

Exactly once across replicas: a run holds a PostgreSQL session advisory lock
for the job on a connection of its own for as long as it runs. A second
worker's try fails, so it skips that run; if the first worker dies, its
connection and lock die with it, and the next run goes to whoever asks first.
"""

import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone

import psycopg
from psycopg.types.json import Jsonb

from . import db, journal
from .errors import GatehouseError

log = logging.getLogger(__name__)

LOCK_CLASS = 0x67617465  # "gate": first key of Gatehouse's two-key advisory locks (the migration lock has one key)


class Skipped(GatehouseError):
    """The job had nothing it could do now."""

    status = 409
    code = "skipped"


@dataclasses.dataclass(frozen=True)
class Job:
    """A job: its function (services → counts) and when it runs (every N minutes, or daily at an hour, UTC)."""

    name: str
    run: Callable[..., dict]
    every_minutes: int | None = None
    daily_at_hour: int | None = None
    run_at_start: bool = False  # catch up as soon as a worker starts

    @property
    def schedule(self) -> str:
        if self.every_minutes:
            return f"every {self.every_minutes} min"
        return f"daily {self.daily_at_hour:02d}:00 UTC"

    def trigger(self):
        """The APScheduler 3 trigger for this schedule."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.every_minutes:
            return IntervalTrigger(minutes=self.every_minutes, timezone=timezone.utc)
        return CronTrigger(hour=self.daily_at_hour, minute=0, timezone=timezone.utc)


@dataclasses.dataclass(frozen=True)
class JobRun:
    """How one run ended: ok, failed, skipped (nothing to do now), or busy (another runner holds the job)."""

    job: str
    outcome: str
    counts: dict
    error: str | None = None
    run_id: str | None = None


def register(jobs: dict, job: Job) -> None:
    """Add a job to a registry; names are unique."""
    if job.name in jobs:
        raise ValueError(f"job {job.name!r} is registered twice")
    jobs[job.name] = job


def configured(settings) -> dict[str, Job]:
    """The jobs these settings turn on (later jobs add a register() call here)."""
    from . import ldapsync, training

    jobs: dict[str, Job] = {}
    if settings.ldap_url:
        register(jobs, Job("ldap_incremental", ldapsync.incremental_job, every_minutes=settings.ldap_sync_minutes,
                           run_at_start=True))
        register(jobs, Job("ldap_full", ldapsync.full_job, daily_at_hour=settings.ldap_full_sync_at))
    register(jobs, Job("training_sweep", training.sweep_job, every_minutes=60))
    return jobs


@contextmanager
def advisory_lock(url: str, name: str, *, timeout: float, wait: float = 0) -> Iterator[psycopg.Connection | None]:
    """A connection holding the session lock for `name` while the block runs, or None when another holds it.

    wait > 0: queue for the lock up to that many seconds. The connection is in
    autocommit mode; use conn.transaction() for writes.
    """
    conn = db.connect(url, timeout=timeout, autocommit=True)
    locked = False
    try:
        if wait:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(wait * 1000)}ms",))
            try:
                conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, name))
                locked = True
            except psycopg.errors.LockNotAvailable:
                locked = False
            conn.execute("SELECT set_config('lock_timeout', '0', false)")
        else:
            locked = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, name)).fetchone()[0]
        yield conn if locked else None
    finally:
        if locked and not conn.broken:  # release now: a closed session's lock lingers until its backend exits
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, name))
        conn.close()  # ends the session, and with it any lock still held


def runner() -> str:
    """This process, as job_runs and the journal name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(services, job: Job, *, trigger: str = "schedule", actor: str | None = None) -> JobRun:
    """Run one job now if no other runner holds it; record and journal the run (kind job)."""
    settings = services.settings
    with advisory_lock(services.database.app_url, f"job:{job.name}", timeout=settings.db_timeout) as conn:
        if conn is None:
            log.info("job %s skipped: another worker is running it", job.name)
            return JobRun(job.name, "busy", {})
        started = datetime.now(timezone.utc)
        conn.execute("UPDATE job_runs SET outcome = 'failed', finished_at = now(), error = 'interrupted: the runner "
                     "stopped' WHERE job = %s AND outcome = 'running'", (job.name,))  # we hold the lock: it died
        run_id = conn.execute("INSERT INTO job_runs (job, trigger, runner, outcome) VALUES (%s, %s, %s, 'running') "
                              "RETURNING id::text", (job.name, trigger, runner())).fetchone()[0]
        outcome, counts, error = "ok", {}, None
        try:
            counts = job.run(services) or {}
        except Skipped as e:
            outcome, error = "skipped", e.message
        except GatehouseError as e:
            log.error("job %s failed: %s", job.name, e.message)
            outcome, error = "failed", e.message
        except Exception as e:  # a job's failure is recorded, never kills the worker
            log.exception("job %s failed", job.name)
            outcome, error = "failed", db.first_line(e)
        finished = datetime.now(timezone.utc)
        with conn.transaction():
            conn.execute("UPDATE job_runs SET finished_at = %s, outcome = %s, counts = %s, error = %s WHERE id = %s",
                         (finished, outcome, Jsonb(counts), error, run_id))
            journal.append(conn, journal.Event(
                kind="job", outcome=outcome, actor=actor or f"job:{job.name}",
                detail={"job": job.name, "trigger": trigger, "runner": runner(), "run": run_id,
                        "started": started.isoformat(), "finished": finished.isoformat(), "counts": counts,
                        **({"error": error} if error else {})}))
    return JobRun(job.name, outcome, counts, error, run_id)


@dataclasses.dataclass(frozen=True)
class LastRun:
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: str | None


def last_runs(conn: psycopg.Connection) -> dict[str, LastRun]:
    """The latest run of each job."""
    rows = conn.execute("SELECT DISTINCT ON (job) job, started_at, finished_at, outcome, error FROM job_runs "
                        "ORDER BY job, started_at DESC").fetchall()
    return {r[0]: LastRun(*r[1:]) for r in rows}
