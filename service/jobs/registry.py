"""Jobs: a registry (name → function of the services), one runner per job across replicas, every run journaled.

Exactly once across replicas: a run holds a PostgreSQL session advisory lock
for the job on a connection of its own for as long as it runs. A second
worker's try fails, so it skips that run; if the first worker dies, its
connection and lock die with it, and the next run goes to whoever asks first.
Every scheduler fires at the same instants (intervals aligned to the epoch,
daily jobs at the hour), and a scheduled run names the due time it serves:
a runner that gets the lock after another finished that due time (ok or
skipped) skips it too, so a job that takes milliseconds is not run once per
replica. A due time that failed, or whose runner died, is run again.
"""

import dataclasses
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from service import db, journal, metrics
from service.db.locks import advisory_lock
from service.errors import GatehouseError, Skipped
from service.jobs import store

log = logging.getLogger(__name__)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # where every replica's intervals start counting, so they fire together


@dataclasses.dataclass(frozen=True)
class Job:
    """A job: its function (services → counts) and when it runs (every N minutes, or daily at an hour, UTC)."""

    name: str
    run: Callable[..., dict]
    every_minutes: int | None = None
    daily_at_hour: int | None = None
    run_at_start: bool = False  # catch up as soon as a worker starts
    wakes_outbox: tuple[str, ...] = ()  # counts that, above 0, mean rows were queued: deliver them now

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
            return IntervalTrigger(minutes=self.every_minutes, start_date=EPOCH, timezone=UTC)
        return CronTrigger(hour=self.daily_at_hour, minute=0, timezone=UTC)

    def due(self, now: datetime) -> datetime:
        """The due time a run at `now` serves: the latest firing of the schedule at or before `now`."""
        if self.every_minutes:
            step = timedelta(minutes=self.every_minutes)
            return EPOCH + (now - EPOCH) // step * step
        today = now.replace(hour=self.daily_at_hour or 0, minute=0, second=0, microsecond=0)
        return today if today <= now else today - timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class JobRun:
    """How one run ended: ok, failed, skipped (nothing to do now), busy (another runner holds the job), or
    already (another runner ran this due time)."""

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
    from service.audit import requests as evidence_requests
    from service.directory import sync as ldapsync
    from service.journal import checkpoints
    from service.outbox import delivery as outbox
    from service.outbox import reconcile as outbox_reconcile
    from service.reviews import jobs as reviews
    from service.training import sweep as training

    jobs: dict[str, Job] = {}
    if settings.ldap_url:
        register(jobs, Job("ldap_incremental", ldapsync.incremental_job, every_minutes=settings.ldap_sync_minutes,
                           run_at_start=True))
        register(jobs, Job("ldap_full", ldapsync.full_job, daily_at_hour=settings.ldap_full_sync_at))
    # The revoking jobs catch up as a worker starts: a restart (a deploy, a crash) must not put a lapse or a
    # missed deadline off until the next firing, nor, restarted often enough, for ever.
    register(jobs, Job("training_sweep", training.sweep_job, every_minutes=60, run_at_start=True,
                           wakes_outbox=("suspended", "restored")))
    register(jobs, Job("outbox", outbox.outbox_job, every_minutes=1, run_at_start=True))
    register(jobs, Job("outbox_reconcile", outbox_reconcile.reconcile_job, every_minutes=60))
    if settings.smtp_host:
        register(jobs, Job("mail_deliver", training.deliver_job, every_minutes=1, run_at_start=True))
    register(jobs, Job("reviews_deadline", reviews.deadline_job, every_minutes=1, run_at_start=True,
                           wakes_outbox=("revoked",)))
    register(jobs, Job("reviews_remind", reviews.remind_job, every_minutes=15))
    register(jobs, Job("reviews_movers", reviews.movers_job, every_minutes=5))
    register(jobs, Job("reviews_schedule", reviews.schedule_job, daily_at_hour=6))
    register(jobs, Job("evidence_export", evidence_requests.evidence_job, every_minutes=1))
    if settings.journal_key_file or settings.journal_pkcs11_module:
        register(jobs, Job("journal_checkpoint", checkpoints.checkpoint_job,
                           every_minutes=settings.journal_checkpoint_minutes, run_at_start=True))
    return jobs


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
        started = datetime.now(UTC)
        due = job.due(started) if trigger == "schedule" else None
        store.mark_interrupted(conn, job.name)  # we hold the lock: a run still marked running lost its runner
        if due is not None and store.ran(conn, job.name, due):
            log.info("job %s skipped: another worker ran it for %s", job.name, due.isoformat())
            return JobRun(job.name, "already", {})
        run_id = store.start_run(conn, job.name, trigger, runner(), due)
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
        finished = datetime.now(UTC)
        with conn.transaction():
            store.finish_run(conn, run_id, finished, outcome, counts, error)
            journal.append(conn, journal.Event(
                kind="job", outcome=outcome, actor=actor or f"job:{job.name}",
                detail={"job": job.name, "trigger": trigger, "runner": runner(), "run": run_id,
                        **({"due": due.isoformat()} if due else {}),
                        "started": started.isoformat(), "finished": finished.isoformat(), "counts": counts,
                        **({"error": error} if error else {})}))
    metrics.job_ran(job.name, outcome, (finished - started).total_seconds(), finished.timestamp())
    return JobRun(job.name, outcome, counts, error, run_id)
