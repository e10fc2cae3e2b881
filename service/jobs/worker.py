"""The worker process: APScheduler 3 runs the configured jobs, never inside web workers.

Each job is added with coalesce (missed runs collapse into one), max_instances=1
(no overlap in this process) and a misfire grace time; run_job takes the
job's advisory lock, so across replicas one worker runs each firing.
"""

import logging
import signal
from datetime import UTC, datetime

from service import metrics
from service.errors import ConfigError
from service.jobs.registry import run_job

log = logging.getLogger(__name__)

MISFIRE_GRACE = 300  # seconds a firing may be late (a busy or paused worker) and still run, once


def build_scheduler(services, registry: dict):
    """A BlockingScheduler (UTC) with one entry per job; nothing runs until start()."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE})
    for job in registry.values():
        first = {"next_run_time": datetime.now(UTC)} if job.run_at_start else {}
        scheduler.add_job(run_job, job.trigger(), args=(services, job), id=job.name, name=job.name, **first)
    return scheduler


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
