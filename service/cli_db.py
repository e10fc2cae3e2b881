"""Command line for the schema and the journal: `gatehouse db migrate|status|shell`, `gatehouse journal verify`.

These operator commands are the only ones that read GATEHOUSE_DATABASE_OWNER_URL
(`db migrate` and `db status`); `serve` and `worker` never use it.
"""

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import click
from psycopg.conninfo import conninfo_to_dict

from service import db
from service.cli_context import Context, pass_ctx
from service.db import migrate
from service.errors import ConfigError

_ANCHOR = re.compile(r"^([1-9][0-9]{0,18}):([0-9a-fA-F]{64})$")


@click.group("db")
def db_group():
    """Database schema."""


@db_group.command("migrate")
@pass_ctx
def db_migrate(ctx: Context):
    """Apply pending migrations (as the owner role)."""
    done = migrate.migrate(ctx.raw_database)
    for m in done:
        click.echo(f"applied {m.version:03d}_{m.name}")
    click.echo("up to date" if not done else f"{len(done)} migration(s) applied")


@db_group.command("status")
@pass_ctx
def db_status(ctx: Context):
    """Show applied and pending migrations; exit 1 when some are pending."""
    with db.connect(ctx.raw_database.owner_url, timeout=ctx.settings.db_timeout) as conn:
        state = migrate.status(conn)
    for m in migrate.available():
        click.echo(f"{'applied' if m.version in state.applied else 'pending'} {m.version:03d}_{m.name}")
    if not state.current:
        sys.exit(1)


def _psql() -> str | None:
    """psql on PATH, else the one the pgserver wheel bundles (embedded mode needs no Debian package)."""
    found = shutil.which("psql")
    if found:
        return found
    try:
        import pgserver
    except ImportError:
        return None
    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else None


@db_group.command("shell")
@click.option("--owner", is_flag=True, help="Connect as the schema owner (may change anything; take care) "
                                            "instead of the application role.")
@pass_ctx
def db_shell(ctx: Context, owner: bool):
    """Open psql on Gatehouse's database (the embedded one, or GATEHOUSE_DATABASE_URL), as the application role.

    psql runs as a child, not in this process's place: when it ends, this process stops the embedded server if
    it was the last one using it.
    """
    database = ctx.database if ctx.raw_database.embedded else ctx.raw_database  # embedded: migrated first
    url = database.owner_url if owner else database.app_url
    if owner and url is None:
        raise ConfigError("GATEHOUSE_DATABASE_OWNER_URL", "set it to open a shell as the owner")
    psql = _psql()
    if psql is None:
        raise ConfigError("PATH", "psql not found: install postgresql-client")
    click.echo(f"psql as {db.role_of(url)} on {_where(url)}", err=True)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to psql's query, not to us
    try:
        code = subprocess.run([psql, url]).returncode
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.exit(code)


def _where(url: str) -> str:
    info = conninfo_to_dict(url)
    return f"database {info.get('dbname')} at {info.get('host')} port {info.get('port', 5432)}"


@click.group("journal")
def journal_group():
    """The decision journal."""


class _Anchor(click.ParamType):
    """SEQ:HASH, a row number and the hash it had when someone wrote it down."""

    name = "SEQ:HASH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        match = _ANCHOR.match(value)
        if not match:
            self.fail(f"{value!r} is not SEQ:HASH (a row number and its 64 hex digit hash)", param, ctx)
        return int(match.group(1)), match.group(2).lower()


@journal_group.command("verify")
@click.option("--expect", "anchors", type=_Anchor(), multiple=True,
              help="SEQ:HASH, a head written down earlier (from `OK <count> <head>`): fail unless row SEQ still "
                   "has HASH. Repeatable.")
@pass_ctx
def journal_verify(ctx: Context, anchors: tuple):
    """Walk the hash chain: `OK <count> <head>` (exit 0), or `BAD <seq> <why>` for the first bad row (exit 1).

    The chain alone cannot tell a rewrite by someone who recomputed every later
    hash (the owner or a superuser); an anchor kept outside the database can.
    """
    from service import journal

    with ctx.connection() as conn:
        result = journal.verify(conn, expect=anchors)
    if result.ok:
        click.echo(f"OK {result.count} {result.head}")
        return
    click.echo(f"BAD {result.bad_seq} {result.problem}")
    sys.exit(1)
