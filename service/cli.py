"""The `gatehouse` command line.

Errors come out as one line on stderr: exit 2 for bad settings or a database
that cannot be reached at start, 1 for everything else that failed.
"""

import getpass
import signal
import sys

import click

from . import db, migrate
from .config import Settings, load_settings
from .errors import ConfigError, DatabaseUnavailable, GatehouseError


class _Context:
    """Settings and the resolved database, built once per invocation on first use."""

    def __init__(self):
        self._settings: Settings | None = None
        self._database: db.Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def database(self) -> db.Database:
        if self._database is None:
            self._database = db.resolve(self.settings)
        return self._database


pass_ctx = click.make_pass_decorator(_Context, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Gatehouse: identity governance and access enforcement."""


@cli.command()
@click.option("--host", help="Address to listen on (GATEHOUSE_HOST).")
@click.option("--port", type=int, help="Port to listen on (GATEHOUSE_PORT).")
@click.option("--workers", type=int, help="Web worker processes (GATEHOUSE_WORKERS).")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True, help="Threads per worker.")
def serve(host, port, workers, threads):
    """Migrate the database, then serve HTTP with gunicorn."""
    from . import logs

    settings = load_settings(host=host, port=port, workers=workers)
    logs.configure(settings.log_level)
    database = db.resolve(settings)
    migrate.migrate(database)
    _check_app_role(database, settings)
    _Gunicorn(settings, database, threads).run()


def _check_app_role(database: db.Database, settings: Settings) -> None:
    with db.connect(database.app_url, timeout=settings.db_timeout) as conn:
        conn.execute("SELECT 1 FROM schema_migrations LIMIT 1")


class _Gunicorn:
    """gunicorn with our app factory; each worker builds its own pool after the fork."""

    def __init__(self, settings: Settings, database: db.Database, threads: int):
        from gunicorn.app.base import BaseApplication

        outer = self

        class App(BaseApplication):
            def load_config(self):
                options = {
                    "bind": f"{settings.host}:{settings.port}", "workers": settings.workers,
                    "worker_class": "gthread", "threads": threads, "accesslog": None, "errorlog": "-",
                    "loglevel": settings.log_level.lower(), "graceful_timeout": 10, "timeout": 60,
                    "proc_name": "gatehouse", "keepalive": 5,
                }
                for key, value in options.items():
                    self.cfg.set(key, value)

            def load(self):
                return outer.factory()

        self._app = App()
        self.settings, self.database = settings, database

    def factory(self):
        from . import logs
        from .app import create_app
        from .wiring import build

        logs.configure(self.settings.log_level)
        return create_app(services=build(self.settings, self.database))

    def run(self):
        self._app.run()


@cli.group("db")
def db_group():
    """Database schema."""


@db_group.command("migrate")
@pass_ctx
def db_migrate(ctx: _Context):
    """Apply pending migrations (as the owner role)."""
    done = migrate.migrate(ctx.database)
    for m in done:
        click.echo(f"applied {m.version:03d}_{m.name}")
    click.echo("up to date" if not done else f"{len(done)} migration(s) applied")


@db_group.command("status")
@pass_ctx
def db_status(ctx: _Context):
    """Show applied and pending migrations; exit 1 when some are pending."""
    with db.connect(ctx.database.owner_url, timeout=ctx.settings.db_timeout) as conn:
        state = migrate.status(conn)
    for m in migrate.available():
        click.echo(f"{'applied' if m.version in state.applied else 'pending'} {m.version:03d}_{m.name}")
    if not state.current:
        sys.exit(1)


@cli.group("journal")
def journal_group():
    """The decision journal."""


@journal_group.command("verify")
@pass_ctx
def journal_verify(ctx: _Context):
    """Walk the hash chain: `OK <count> <head>` (exit 0), or `BAD <seq> <why>` for the first bad row (exit 1)."""
    from . import journal

    with db.connect(ctx.database.app_url, timeout=ctx.settings.db_timeout) as conn:
        result = journal.verify(conn)
    if result.ok:
        click.echo(f"OK {result.count} {result.head}")
        return
    click.echo(f"BAD {result.bad_seq} {result.problem}")
    sys.exit(1)


def operator_actor() -> str:
    """Who runs an operator command, for the journal: operator:<os user>."""
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator:unknown"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, turning every error into one line and an exit code."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run atexit: stop the embedded server
    try:
        cli.main(args=argv, prog_name="gatehouse", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 1)
    except click.ClickException as e:
        _fail(e.format_message().replace("\n", " "), 2)
    except (ConfigError, DatabaseUnavailable) as e:
        _fail(e.message, 2)
    except GatehouseError as e:
        _fail(e.message, 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _fail(message: str, code: int) -> None:
    print(f"gatehouse: error: {message}", file=sys.stderr)
    sys.exit(code)
