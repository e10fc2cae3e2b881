"""What every `gatehouse` command shares: the settings, the database, the operator, how to print a table.

It is its own module so that the domain command groups import it and the root CLI imports them, one way.
"""

import getpass
from contextlib import contextmanager
from datetime import UTC

import click

from service import db
from service.config import Settings, load_settings
from service.db import tx


class Context:
    """Settings and the resolved database, built once per invocation on first use."""

    def __init__(self):
        self._settings: Settings | None = None
        self._raw: db.Database | None = None
        self._database: db.Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def raw_database(self) -> db.Database:
        """The database as found, its schema not looked at (for `db migrate|status|shell`)."""
        if self._raw is None:
            self._raw = db.resolve(self.settings)
        return self._raw

    @property
    def database(self) -> db.Database:
        """The database with a current schema: migrated first in embedded and single-URL mode, as `serve` does;
        otherwise MigrationsPending (one line, exit 2) rather than a command failing on a missing table."""
        if self._database is None:
            from service.db import migrate

            migrate.prepare_for_service(self.raw_database, timeout=self.settings.db_timeout)
            self._database = self.raw_database
        return self._database

    @contextmanager
    def connection(self, *, what: str = "database not reachable", autocommit: bool = False):
        """A connection as the app role; a database that fails, at once or midway: DatabaseUnavailable."""
        with tx.direct(self.database.app_url, timeout=self.settings.db_timeout, what=what,
                       autocommit=autocommit) as conn:
            yield conn

    @contextmanager
    def transaction(self, *, what: str = "nothing was changed"):
        """One transaction of a command: its changes and their journal rows, or none."""
        with self.connection(what=what) as conn, conn.transaction():
            yield conn

    @contextmanager
    def services(self, database: db.Database | None = None):
        """The service's parts for one command, closed when it ends."""
        from service.bootstrap import build

        services = build(self.settings, database or self.database)
        try:
            yield services
        finally:
            services.close()


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def operator_actor() -> str:
    """Who runs an operator command, for the journal: operator:<os user>."""
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator:unknown"


def when(ts) -> str:
    """A timestamp as the CLI prints it (UTC, to the minute), or '-'."""

    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if ts else "-"


def table(rows: list[tuple]) -> None:
    """Print rows as left-aligned columns, the first row being the header."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=False)).rstrip())
