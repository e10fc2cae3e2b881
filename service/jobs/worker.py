"""The worker process: APScheduler 3 runs the configured jobs, never inside web workers.

Each job is added with coalesce (missed runs collapse into one), max_instances=1
(no overlap in this process) and a misfire grace time; run_job takes the
job's advisory lock, so across replicas one worker runs each firing. A job
that queued outbound changes (a revocation) wakes the outbox at once rather
than leaving them for its next firing.
"""

import logging
import signal
from datetime import UTC, datetime, timedelta

from service import metrics
from service.errors import ConfigError
from service.jobs.registry import run_job

log = logging.getLogger(__name__)

MISFIRE_GRACE = 300  # seconds a firing may be late (a busy or paused worker) and still run, once
WAKE_TRIES = 30  # a woken outbox that finds another run in progress (it may have missed the new rows) tries again


def build_scheduler(services, registry: dict):
    """A BlockingScheduler (UTC) with one entry per job; nothing runs until start()."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE})
    for job in registry.values():
        args = (scheduler, services, job, registry)
        scheduler.add_job(_fire, job.trigger(), args=args, id=job.name, name=job.name)
        if job.run_at_start:  # once now, for the due time now falls in; the trigger keeps to its aligned instants
            scheduler.add_job(_fire, args=args, id=f"{job.name}:start", name=job.name)
    return scheduler


def _fire(scheduler, services, job, registry: dict) -> None:
    done = run_job(services, job)
    if done.outcome == "ok" and "outbox" in registry and any(done.counts.get(k) for k in job.wakes_outbox):
        _wake(scheduler, services, registry["outbox"], WAKE_TRIES)


def _wake(scheduler, services, outbox, tries: int) -> None:
    """Run the outbox now; if another run holds it, which may have loaded its rows before ours, again in a second."""
    if run_job(services, outbox, trigger="wake").outcome == "busy" and tries > 1:
        scheduler.add_job(_wake, "date", run_date=datetime.now(UTC) + timedelta(seconds=1), name=outbox.name,
                          args=(scheduler, services, outbox, tries - 1))


def run(services, registry: dict) -> None:
    """Run the scheduler until SIGTERM or SIGINT; a job that is running is let finish."""
    scheduler = build_scheduler(services, registry)

    def stop(signum, _frame):
        log.info("worker stopping (signal %d)", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker started: %s", ", ".join(f"{j.name} ({j.schedule})" for j in registry.values()))
    scheduler.start()
    log.info("worker stopped")


def serve_metrics(host: str, port: int) -> None:
    """prometheus-client's own HTTP server for this process's metrics (the jobs'), on a daemon thread.

    The worker is one process: its metrics live in its memory, never in a web server's multiprocess directory.
    """
    import os

    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # before prometheus-client is first imported
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as e:
        raise ConfigError("GATEHOUSE_WORKER_METRICS_PORT", f"cannot listen on {host}:{port}: {e.strerror}") from None
    metrics.init()
    log.info("worker metrics on http://%s:%d/metrics", host, port)
