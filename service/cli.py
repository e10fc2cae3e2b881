"""The `gatehouse` command line.

Errors come out as one line on stderr, never a traceback: exit 2 for bad
settings, a database that cannot be reached at start or pending migrations,
1 for everything else that failed (database errors included).
"""

import signal
import sys

import click
import psycopg

from policies import PolicyError
from service import cli_db, db
from service.cli_context import Context, operator_actor, pass_ctx, when
from service.config import Settings, load_settings
from service.db import migrate
from service.directory import cli as cli_sync
from service.errors import ConfigError, DatabaseUnavailable, GatehouseError, JournalBroken, MigrationsPending
from service.jobs import cli as jobs_cli
from service.training import cli as cli_training


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
    from service.access.resources import sync_resources_at
    from service.bootstrap import load_policy

    settings = load_settings(host=host, port=port, workers=workers)
    logs.configure(settings.log_level)
    policy = load_policy(settings.policy_file)  # an invalid policy stops start-up here (exit 2)
    database = migrate.prepare_for_service(db.resolve(settings), timeout=settings.db_timeout)
    sync_resources_at(database.app_url, policy, timeout=settings.db_timeout)
    _Gunicorn(settings, database, threads, policy).run()


class _Gunicorn:
    """gunicorn with our app factory; each worker builds its own pool after the fork."""

    def __init__(self, settings: Settings, database: db.Database, threads: int, policy):
        from gunicorn.app.base import BaseApplication

        outer = self

        class App(BaseApplication):
            def load_config(self):
                options = {
                    "bind": f"{settings.host}:{settings.port}", "workers": settings.workers,
                    "worker_class": "gthread", "threads": threads, "accesslog": None, "errorlog": "-",
                    "loglevel": settings.log_level.lower(), "graceful_timeout": 10, "timeout": 60,
                    "proc_name": "gatehouse", "keepalive": 5,
                    "worker_exit": lambda arbiter, worker: outer.close(),
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
        self.services = build(self.settings, self.database, policy=self.policy)
        return create_app(services=self.services)

    def close(self):
        """In a worker that stops: write what it still holds (the anonymous refusals it counted)."""
        if self.services is not None:
            self.services.close()

    def run(self):
        self._app.run()


@cli.group("clients")
def clients_group():
    """Machine clients: OAuth client credentials, and static tokens for SCIM pushers."""


def _client_change(ctx: Context, action: str, change):
    """Run `change(conn)` and journal it in one transaction; detail never holds a secret or token."""
    from service import journal

    with db.connect(ctx.database.app_url, timeout=ctx.settings.db_timeout) as conn, conn.transaction():
        result, detail = change(conn)
        journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=operator_actor(),
                                           detail={"action": action, **detail}))
    return result


def _about(client) -> dict:
    return {"client": client.name, "client_id": client.client_id, "scopes": list(client.scopes)}


@clients_group.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="A scope the client may ask for (repeat for more): scim, access:check, training:write, "
                   "journal:read.")
@pass_ctx
def clients_create(ctx: Context, name, scopes):
    """Register a client; print its client_id and secret, once."""
    from service.clients import store as clients

    def change(conn):
        issued = clients.create(conn, name=name, scopes=scopes, created_by=operator_actor())
        return issued, _about(issued.client)

    issued = _client_change(ctx, "clients.create", change)
    click.echo(f"client_id:     {issued.client.client_id}")
    click.echo(f"client_secret: {issued.secret}")
    click.echo("The secret will not be shown again; store it in the client's configuration now.")


@clients_group.command("list")
@pass_ctx
def clients_list(ctx: Context):
    """List clients: name, client_id, scopes, created, last used, revoked."""
    from service.clients import store as clients

    with db.connect(ctx.database.app_url, timeout=ctx.settings.db_timeout) as conn:
        found = clients.list_all(conn)
    if not found:
        click.echo("no clients")
        return
    rows = [("NAME", "CLIENT_ID", "SCOPES", "CREATED", "LAST USED", "REVOKED")]
    rows += [(c.name, c.client_id, ",".join(c.scopes), when(c.created_at), when(c.last_used_at),
              when(c.revoked_at)) for c in found]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@clients_group.command("revoke")
@click.argument("name")
@pass_ctx
def clients_revoke(ctx: Context, name):
    """Revoke a client and every token it holds."""
    from service.clients import store as clients

    def change(conn):
        client, tokens = clients.revoke(conn, name)
        return (client, tokens), {**_about(client), "tokens_revoked": tokens}

    client, tokens = _client_change(ctx, "clients.revoke", change)
    click.echo(f"revoked {client.name} ({client.client_id}) and {tokens} token(s)")


@clients_group.command("rotate")
@click.argument("name")
@pass_ctx
def clients_rotate(ctx: Context, name):
    """Give a client a new secret (its access tokens stop working); print it, once."""
    from service.clients import store as clients

    def change(conn):
        issued = clients.rotate_secret(conn, name)
        return issued, _about(issued.client)

    issued = _client_change(ctx, "clients.rotate", change)
    click.echo(f"client_id:     {issued.client.client_id}")
    click.echo(f"client_secret: {issued.secret}")
    click.echo("The old secret no longer works; the new one will not be shown again.")


@clients_group.command("token")
@click.argument("name")
@pass_ctx
def clients_token(ctx: Context, name):
    """Issue a long-lived bearer token for a SCIM client (Okta, Entra ID); print it, once."""
    from service.clients import store as clients

    def change(conn):
        issued = clients.issue_static_token(conn, name)
        return issued, {**_about(issued.client), "kind": "static"}

    issued = _client_change(ctx, "clients.token", change)
    click.echo(issued.secret)
    click.echo(f"A static bearer token for {issued.client.name}; it will not be shown again, and it works until "
               "the client is revoked.", err=True)


@cli.group("admin")
def admin_group():
    """Admins (break-glass enrollment from the server host)."""


@admin_group.command("enroll")
@click.argument("email")
@click.option("--name", "display_name", help="The admin's display name.")
@pass_ctx
def admin_enroll(ctx: Context, email: str, display_name: str | None):
    """Make EMAIL an admin (if needed) and print a single-use enrollment URL, valid 15 minutes."""
    from service import journal
    from service.admins import store as admins

    actor = operator_actor()
    with db.connect(ctx.database.app_url, timeout=ctx.settings.db_timeout) as conn, conn.transaction():
        admin = admins.admin_by_email(conn, email)
        if admin is None or not admin.active:
            admin = admins.create_admin(conn, email, display_name=display_name, created_by=actor)
        token = admins.create_enrollment(conn, admin.id, created_by=actor)
        journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=actor,
                                           detail={"action": "admins.enroll", "email": admin.email}))
    click.echo(f"{ctx.settings.public_base_url}/admin/enroll/{token}")
    click.echo(f"Single use, valid {admins.ENROLLMENT_MINUTES} minutes.", err=True)


@cli.group("access")
def access_group():
    """Access decisions."""


@access_group.command("explain")
@click.argument("user")
@click.argument("resource")
@pass_ctx
def access_explain(ctx: Context, user: str, resource: str):
    """Say whether USER may use RESOURCE now, why, and the dates that matter; exit 1 on deny (not journaled)."""
    from datetime import datetime, timezone

    import psycopg

    from policies import decide
    from service.access import facts as access
    from service.bootstrap import load_policy

    policy = load_policy(ctx.settings.policy_file)
    try:
        with db.connect(ctx.database.app_url, timeout=ctx.settings.db_timeout) as conn:
            facts = access.load_facts(conn, user, resource, identifiers=ctx.settings.check_identifiers).facts
    except psycopg.Error as e:
        raise DatabaseUnavailable(f"the facts could not be read: {db.first_line(e)}") from None
    now = datetime.now(timezone.utc)
    decision = decide(facts, policy, now)
    for line in _explanation(user, facts, policy, decision, now):
        click.echo(line)
    if not decision.allow:
        sys.exit(1)


def _explanation(user, facts, policy, decision, now) -> list[str]:
    """The decision in plain words: every reason, then each course's and review's dates."""
    from policies import training_status

    resource = policy.resource(facts.resource)
    what = f"{facts.resource} ({resource.name})" if resource else facts.resource
    verdict = "ALLOW: {} may use {}" if decision.allow else "DENY: {} may not use {}"
    lines = [verdict.format(user, what) + f" now ({_at(now)}).", "Because:"]
    lines += [f"  - {r.text} [{r.code}]" for r in decision.reasons]
    if facts.ambiguous:
        lines.append(f"People {user!r} names: {', '.join(facts.ambiguous)}")
    person = facts.person
    if person is not None and facts.resource_known:
        requirements = policy.requirements_for(facts.resource)
        names = {t.course: t.name for t in requirements}
        statuses = training_status(facts.completions, requirements, now, started_at=person.started_at,
                                   department=person.department)
        if statuses:
            lines.append(f"Training required for {facts.resource}:")
        lines += [f"  - {names[s.course]} ({s.course}): {_training_dates(s, now)}" for s in statuses]
        for item in sorted(facts.reviews, key=lambda i: i.due_at):
            lines.append(f"  - review {item.campaign}: due {_at(item.due_at)} ({_relative(item.due_at, now)}), "
                         f"{item.decision or 'not yet decided'}")
    lines.append(f"Policy version: {decision.policy_version}")
    return lines


def _training_dates(status, now) -> str:
    done = f"completed {_at(status.completed_at)}" if status.completed_at else "never completed"
    verb = "lapsed" if status.lapses_at <= now else "lapses"
    if status.completed_at is None:
        verb = "was due" if status.lapses_at <= now else "due"
    return f"{done}; {verb} {_at(status.lapses_at)} ({_relative(status.lapses_at, now)})"


def _at(moment) -> str:
    from datetime import timezone

    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _relative(moment, now) -> str:
    seconds = int((moment - now).total_seconds())
    unit, length = next((u, n) for u, n in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
                        if abs(seconds) >= n or n == 1)
    count = abs(seconds) // length
    amount = f"{count} {unit}" + ("" if count == 1 else "s")
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


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


for _command in (cli_db.db_group, cli_db.journal_group, cli_sync.sync_group, jobs_cli.worker_command,
                 jobs_cli.jobs_group, cli_training.training_group):
    cli.add_command(_command)
