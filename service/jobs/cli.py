"""Command line for the worker and its jobs: `gatehouse worker`, `gatehouse jobs list|run`."""

import sys

import click

from service import logs
from service.cli_context import Context, operator_actor, pass_ctx, table, when
from service.db import migrate
from service.errors import ConfigError, GatehouseError, NotFound
from service.jobs import worker
from service.jobs.registry import configured, run_job
from service.jobs.store import last_runs


@click.command("worker")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve /metrics on this port, 0 for none (GATEHOUSE_WORKER_METRICS_PORT; default 0).")
@click.option("--metrics-host", default=None, help="Address for it (GATEHOUSE_WORKER_METRICS_HOST; default 127.0.0.1).")
@pass_ctx
def worker_command(ctx: Context, metrics_port: int | None, metrics_host: str | None):
    """Run the scheduled jobs (LDAP sync, ...) until stopped; one process, never inside web workers."""
    logs.configure(ctx.settings.log_level)
    registry = configured(ctx.settings)
    if not registry:
        raise ConfigError("GATEHOUSE_LDAP_URL", "no jobs are configured: set it to sync a directory")
    database = migrate.prepare_for_service(ctx.database, timeout=ctx.settings.db_timeout)
    port = ctx.settings.worker_metrics_port if metrics_port is None else metrics_port
    if port:
        worker.serve_metrics(metrics_host or ctx.settings.worker_metrics_host, port)
    with ctx.services(database) as services:
        worker.run(services, registry)


@click.group("jobs")
def jobs_group():
    """The worker's jobs."""


@jobs_group.command("list")
@pass_ctx
def jobs_list(ctx: Context):
    """Configured jobs: schedule, last run and its outcome."""
    registry = configured(ctx.settings)
    if not registry:
        click.echo("no jobs configured")
        return
    with ctx.connection() as conn:
        last = last_runs(conn)
    rows = [("NAME", "SCHEDULE", "LAST RUN", "OUTCOME")]
    for name, job in registry.items():
        run = last.get(name)
        outcome = (run.outcome + (f": {run.error}" if run.error else "")) if run else "-"
        rows.append((name, job.schedule, when(run.started_at) if run else "never", outcome))
    table(rows)


@jobs_group.command("run")
@click.argument("name")
@pass_ctx
def jobs_run(ctx: Context, name: str):
    """Run one job now, as the worker would (same lock, journaled); exit 1 unless it ran and succeeded."""
    logs.configure(ctx.settings.log_level)  # as the worker logs
    registry = configured(ctx.settings)
    if name not in registry:
        raise NotFound(f"no job {name!r}; configured: {', '.join(registry) or 'none'}")
    with ctx.services() as services:
        done = run_job(services, registry[name], trigger="manual", actor=operator_actor())
    if done.outcome == "busy":
        raise GatehouseError(f"job {name} is running in another worker")
    counts = " ".join(f"{k}={v}" for k, v in done.counts.items())
    click.echo(
        f"job {name} {done.outcome}" + (f": {done.error}" if done.error else "") + (f" ({counts})" if counts else "")
    )
    if done.outcome != "ok":
        sys.exit(1)
