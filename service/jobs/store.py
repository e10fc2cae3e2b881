"""The job_runs table: a run started, finished, or left behind by a runner that died; the latest of each job."""

import dataclasses
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from service.db.query import scalar


def mark_interrupted(conn: psycopg.Connection, job: str) -> None:
    """Close the job's runs still marked running: the caller holds the job's lock, so their runner died."""
    conn.execute("UPDATE job_runs SET outcome = 'failed', finished_at = now(), error = 'interrupted: the runner "
                 "stopped' WHERE job = %s AND outcome = 'running'", (job,))


def ran(conn: psycopg.Connection, job: str, due: datetime) -> bool:
    """Whether a run of the job for this due time ended ok or skipped (job_runs_once_per_due)."""
    return bool(scalar(conn, "SELECT EXISTS (SELECT 1 FROM job_runs WHERE job = %s AND due_at = %s "
                             "AND outcome IN ('ok', 'skipped'))", (job, due)))


def start_run(conn: psycopg.Connection, job: str, trigger: str, runner: str, due: datetime | None = None) -> str:
    """Record a run as running, for its due time (None: a manual run); its id."""
    return scalar(conn, "INSERT INTO job_runs (job, trigger, runner, outcome, due_at) "
                        "VALUES (%s, %s, %s, 'running', %s) RETURNING id::text", (job, trigger, runner, due))


def finish_run(conn: psycopg.Connection, run_id: str, finished: datetime, outcome: str, counts: dict,
               error: str | None) -> None:
    """Record how a run ended."""
    conn.execute("UPDATE job_runs SET finished_at = %s, outcome = %s, counts = %s, error = %s WHERE id = %s",
                 (finished, outcome, Jsonb(counts), error, run_id))


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


@dataclasses.dataclass(frozen=True)
class FailedRun:
    job: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


def failed_runs(conn: psycopg.Connection, *, days: int = 7, limit: int = 20) -> list[FailedRun]:
    """Runs that failed in the last `days` days, newest first."""
    return [FailedRun(*r) for r in conn.execute(
        "SELECT job, trigger, started_at, finished_at, error FROM job_runs WHERE outcome = 'failed' "
        "AND started_at > now() - make_interval(days => %s) ORDER BY started_at DESC LIMIT %s", (days, limit))]
