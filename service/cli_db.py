"""Command line for the schema and the journal: `gatehouse db migrate|status|shell`, `gatehouse journal verify`.

These operator commands are the only ones that read GATEHOUSE_DATABASE_OWNER_URL
(`db migrate` and `db status`); `serve` and `worker` never use it.
"""

import re
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
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
@click.option("--checkpoint", "files", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="A signed checkpoint kept outside the database (GATEHOUSE_JOURNAL_CHECKPOINT_FILE's copy): fail "
                   "unless its signature verifies and the rows still have its Merkle root. Repeatable.")
@click.option("--key", "vkey", metavar="VERIFIER_KEY",
              help="The checkpoints' verifier key (name+id+key); default: the configured signer's.")
@pass_ctx
def journal_verify(ctx: Context, anchors: tuple, files: tuple, vkey: str | None):
    """Walk the hash chain: `OK <count> <head>` (exit 0), or `BAD <seq> <why>` for the first bad row (exit 1).

    The chain alone cannot tell a rewrite by someone who recomputed every later
    hash (the owner or a superuser); an anchor kept outside the database can:
    --expect, every stored checkpoint, and --checkpoint FILE, which survives the
    stored ones being deleted too.
    """
    from service import journal
    from service.journal import checkpoints

    settings = ctx.settings
    key = _verifier(settings, vkey)
    with ctx.connection() as conn:
        stored = checkpoints.stored(conn)
    anchors_of_checkpoints = []
    for c in stored:
        name = f"stored checkpoint {c.id} ({when_utc(c.signed_at)})"
        if key is not None:
            _open(c.note, key, name)
        anchors_of_checkpoints.append((c.tree_size, c.root, name))
    for path in files:
        if key is None:
            raise ConfigError("--key", f"cannot check the signature of {path}: configure the signer or give --key")
        opened = _open(path.read_text("utf-8", errors="replace"), key, str(path))
        anchors_of_checkpoints.append((opened.size, opened.root, f"checkpoint {path}"))
    with ctx.connection() as conn:
        result = journal.verify(conn, expect=anchors, checkpoints=anchors_of_checkpoints)
    if signers_on(settings):
        allowed = timedelta(minutes=2 * settings.journal_checkpoint_minutes + 5)
        newest = max((c.signed_at for c in stored), default=None)
        if newest is None:
            click.echo("warning: no checkpoint is stored; is the worker's journal_checkpoint job running?", err=True)
        elif datetime.now(UTC) - newest > allowed:
            click.echo(f"warning: the newest stored checkpoint ({when_utc(newest)}) is older than the schedule "
                       f"(every {settings.journal_checkpoint_minutes} min) allows", err=True)
    if result.ok:
        click.echo(f"OK {result.count} {result.head}")
        return
    click.echo(f"BAD {result.bad_seq} {result.problem}")
    sys.exit(1)


def when_utc(ts) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signers_on(settings) -> bool:
    return bool(settings.journal_key_file or settings.journal_pkcs11_module)


def _verifier(settings, vkey: str | None) -> tuple[str, bytes] | None:
    """(name, public key) to check checkpoint signatures with: --key, else the configured signer's, else None."""
    from service.journal import note, signers

    if vkey:
        try:
            return note.parse_verifier_key(vkey)
        except note.NoteError as e:
            raise ConfigError("--key", str(e)) from None
    signer = signers.configured(settings)
    return None if signer is None else (signer.name, signer.public_key)


def _open(text: str, key: tuple[str, bytes], name: str):
    """The checkpoint in `text`, its signature checked; exit 1 naming it when it is not one or does not verify."""
    from service.journal import note

    try:
        return note.open_checkpoint(text, *key)
    except note.NoteError as e:
        click.echo(f"BAD {name}: {e}")
        sys.exit(1)


@journal_group.command("checkpoint")
@pass_ctx
def journal_checkpoint(ctx: Context):
    """Sign a checkpoint of the journal now (as the worker's journal_checkpoint job does); print it."""
    from service.journal import checkpoints, signers

    signer = signers.configured(ctx.settings)
    if signer is None:
        raise ConfigError("GATEHOUSE_JOURNAL_KEY_FILE", "no checkpoint key (nor GATEHOUSE_JOURNAL_PKCS11_MODULE)")
    with ctx.transaction() as conn:
        made = checkpoints.make(conn, signer)
    if ctx.settings.journal_checkpoint_file:
        checkpoints.publish(ctx.settings.journal_checkpoint_file, made.note)
    click.echo(made.note, nl=False)


@journal_group.command("keygen")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the private key (created with mode 0600; never overwritten).")
@click.option("--name", help="The key name, which is the checkpoints' origin; default: the configured origin.")
@pass_ctx
def journal_keygen(ctx: Context, output: Path, name: str | None):
    """Make a development signing key (a signed-note key file); print its verifier key for the auditors."""
    from service.journal import note, signers

    try:
        click.echo(signers.generate_key_file(output, name or ctx.settings.checkpoint_origin))
    except FileExistsError:
        raise click.ClickException(f"{output} exists; not overwriting a key") from None
    except note.NoteError as e:
        raise click.ClickException(str(e)) from None


@journal_group.command("proof")
@click.argument("seq", type=click.IntRange(min=1))
@click.option("--size", type=click.IntRange(min=1), help="The tree size to prove against; default: the newest "
              "stored checkpoint's if it covers SEQ, else the head.")
@pass_ctx
def journal_proof(ctx: Context, seq: int, size: int | None):
    """Print the inclusion proof of row SEQ (RFC 9162) as JSON, with the checkpoint it verifies against."""
    import json

    from service.journal import proofs

    with ctx.transaction() as conn:
        click.echo(json.dumps(proofs.inclusion(conn, seq, size), indent=2))


@journal_group.command("consistency")
@click.argument("old", type=click.IntRange(min=1))
@click.argument("new", type=click.IntRange(min=1))
@pass_ctx
def journal_consistency(ctx: Context, old: int, new: int):
    """Print the consistency proof (RFC 9162) from tree size OLD to tree size NEW as JSON."""
    import json

    from service.journal import proofs

    with ctx.transaction() as conn:
        click.echo(json.dumps(proofs.consistency(conn, old, new), indent=2))
