"""The `gatehouse` command line.

Errors come out as one line on stderr, never a traceback: exit 2 for bad
settings, a database that cannot be reached at start or pending migrations,
1 for everything else that failed (database errors included).
"""

import contextlib
import signal
import sys
from collections.abc import Iterator

import click
import psycopg

from policies import PolicyError
from service import cli_db, db, endpoints
from service.access import cli as access_cli
from service.access import policy_cli
from service.admins import cli as admins_cli
from service.audit import cli as audit_cli
from service.clients import cli as clients_cli
from service.config import Settings, load_settings, metrics_dir
from service.db import migrate
from service.directory import cli as directory_cli
from service.errors import ConfigError, DatabaseUnavailable, GatehouseError, JournalBroken, MigrationsPending
from service.jobs import cli as jobs_cli
from service.outbox import cli as outbox_cli
from service.people import cli as people_cli
from service.reviews import cli as reviews_cli
from service.training import cli as training_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Gatehouse: identity governance and access enforcement."""


@cli.command()
@click.option("--host", help="Address to listen on (GATEHOUSE_HOST).")
@click.option("--port", type=int, help="Port to listen on (GATEHOUSE_PORT).")
@click.option("--workers", type=int, help="Web worker processes (GATEHOUSE_WORKERS).")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True, help="Threads per worker.")
def serve(host, port, workers, threads):
    """Serve HTTP with gunicorn once the schema is current (migrating first in embedded and one-URL mode)."""
    from service import logs
    from service.bootstrap import load_policy

    settings = load_settings(host=host, port=port, workers=workers)
    logs.configure(settings.log_level)
    policy = load_policy(settings.policy_file)  # an invalid policy stops start-up here (exit 2)
    database = migrate.prepare_for_service(db.resolve(settings), timeout=settings.db_timeout)
    _apply_policy(settings, database, policy)  # the policy's resources, then its rules
    endpoints.announce(database.app_url, settings.public_base_url, timeout=settings.db_timeout)
    with _metrics_dir() as path:
        _Gunicorn(settings, database, threads, policy, path).run()


@contextlib.contextmanager
def _metrics_dir() -> Iterator[str]:
    """PROMETHEUS_MULTIPROC_DIR for the workers' metric files: the operator's (its old files cleared), else a
    private temporary directory, removed when serve stops. Set before prometheus-client is first imported."""
    import logging
    import os
    import shutil
    import tempfile
    from pathlib import Path

    path, owner = metrics_dir(), os.getpid()
    private = not path
    if path:
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
            for stale in Path(path).glob("*.db"):  # a previous run's: its counters would be added to this one's
                stale.unlink()
        except OSError as e:
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR", f"cannot use {path}: {e.strerror}") from None
    else:
        path = tempfile.mkdtemp(prefix="gatehouse-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    logging.getLogger("service.metrics").info("metrics: per-process files in %s", path)
    try:
        yield path
    finally:
        if private and os.getpid() == owner:  # a gunicorn worker leaves through here too: only serve removes it
            shutil.rmtree(path, ignore_errors=True)


def _apply_policy(settings: Settings, database: db.Database, policy) -> None:
    """The file's resources and rules at start, once per version across replicas; a change over the guard is held
    (its resources are synced all the same), and serve starts."""
    import logging

    from service.access import policy as access_policy
    from service.access.resources import sync_resources_at

    log = logging.getLogger("service.access.policy")
    try:
        outcome = access_policy.apply_policy(database.app_url, policy, source=str(settings.policy_file),
                                             actor="service:start", timeout=settings.db_timeout)
    except access_policy.PolicyBusy as e:  # another replica is still at it; it journals what it does
        log.warning("policy not applied by this process: %s", e.message)
        sync_resources_at(database.app_url, policy, timeout=settings.db_timeout)
        return
    if outcome.state != "held":  # a hold is logged as a warning where it is decided
        log.info("policy %s %s: %s", outcome.version[:12], outcome.state, outcome.message)


SWITCH_INTERVAL = 0.0005  # seconds; Python's default is 0.005


class _Gunicorn:
    """gunicorn with our app factory; each worker builds its own pool after the fork."""

    def __init__(self, settings: Settings, database: db.Database, threads: int, policy, metrics_path: str):
        from gunicorn.app.base import BaseApplication

        from service import gunicorn_glue

        gunicorn_glue.install_json_errors()
        outer = self

        class App(BaseApplication):
            def load_config(self):
                options = {
                    "bind": f"{settings.host}:{settings.port}", "workers": settings.workers,
                    "worker_class": "gthread", "threads": threads, "accesslog": None, "errorlog": "-",
                    "loglevel": settings.log_level.lower(), "graceful_timeout": 10, "timeout": 60,
                    "proc_name": "gatehouse", "keepalive": 5, "logger_class": gunicorn_glue.logger_class(),
                    "limit_request_line": gunicorn_glue.LIMIT_REQUEST_LINE,
                    "worker_exit": lambda arbiter, worker: outer.close(),
                    "child_exit": lambda arbiter, worker: gunicorn_glue.worker_gone(worker.pid, metrics_path),
                }
                for key, value in options.items():
                    self.cfg.set(key, value)

            def load(self):
                return outer.factory()

        self.services = None
        self._app = App()
        self.settings, self.database, self.policy = settings, database, policy

    def factory(self):
        from service import logs
        from service.app import create_app
        from service.bootstrap import build

        logs.configure(self.settings.log_level)
        # A request thread mostly waits (on the facts query, on the journal's commit); when its answer arrives it
        # needs the GIL back, and with the default 5 ms switch interval a busy sibling may hold it that long.
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.services = build(self.settings, self.database, policy=self.policy)
        return create_app(services=self.services)

    def close(self):
        """In a worker that stops: write what it still holds (the anonymous refusals it counted)."""
        if self.services is not None:
            self.services.close()

    def run(self):
        self._app.run()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, turning every error into one line and an exit code."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run atexit: stop the embedded server
    try:
        cli.main(args=argv, prog_name="gatehouse", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 1)
    except click.ClickException as e:
        _fail(e.format_message().replace("\n", " "), 2)
    except JournalBroken as e:  # not a start-up failure: the database answers, the chain needs an operator
        _fail(e.message, 1)
    except (ConfigError, DatabaseUnavailable, MigrationsPending) as e:
        _fail(e.message, 2)
    except PolicyError as e:  # names the file and the key at fault
        _fail(str(e).replace("\n", " "), 2)
    except GatehouseError as e:
        _fail(e.message, 1)
    except psycopg.Error as e:  # whatever the command, never a traceback for a database error
        _fail(f"database error: {db.first_line(e)}", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _fail(message: str, code: int) -> None:
    print(f"gatehouse: error: {message}", file=sys.stderr)
    sys.exit(code)


for _command in (cli_db.db_group, cli_db.journal_group, clients_cli.clients_group, admins_cli.admin_group,
                 access_cli.access_group, policy_cli.policy_group, directory_cli.sync_group, jobs_cli.worker_command,
                 jobs_cli.jobs_group, training_cli.training_group, people_cli.people_group, outbox_cli.outbox_group,
                 reviews_cli.reviews_group, audit_cli.evidence_group):
    cli.add_command(_command)
