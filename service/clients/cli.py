"""Command line for machine clients: `gatehouse clients create|list|revoke|rotate|token`, journaled as the operator."""

import click

from service import journal
from service.cli_context import Context, operator_actor, pass_ctx, table, when
from service.clients import actions
from service.clients import store as clients


@click.group("clients")
def clients_group():
    """Machine clients: OAuth client credentials, and static tokens for SCIM pushers."""


def _client_change(ctx: Context, action: str, change):
    """Run `change(conn)` and journal it in one transaction; detail never holds a secret or token."""
    with ctx.connection() as conn, conn.transaction():
        result, detail = change(conn)
        journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=operator_actor(),
                                           detail={"action": action, **detail}))
    return result


@clients_group.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="A scope the client may ask for (repeat for more): scim, access:check, training:write, "
                   "journal:read.")
@pass_ctx
def clients_create(ctx: Context, name, scopes):
    """Register a client; print its client_id and secret, once."""
    issued = _client_change(ctx, "clients.create",
                            lambda conn: actions.create(conn, name=name, scopes=scopes, actor=operator_actor()))
    click.echo(f"client_id:     {issued.client.client_id}")
    click.echo(f"client_secret: {issued.secret}")
    click.echo("The secret will not be shown again; store it in the client's configuration now.")


@clients_group.command("list")
@pass_ctx
def clients_list(ctx: Context):
    """List clients: name, client_id, scopes, created, last used, revoked."""
    with ctx.connection() as conn:
        found = clients.list_all(conn)
    if not found:
        click.echo("no clients")
        return
    rows = [("NAME", "CLIENT_ID", "SCOPES", "CREATED", "LAST USED", "REVOKED")]
    rows += [(c.name, c.client_id, ",".join(c.scopes), when(c.created_at), when(c.last_used_at),
              when(c.revoked_at)) for c in found]
    table(rows)


@clients_group.command("revoke")
@click.argument("name")
@pass_ctx
def clients_revoke(ctx: Context, name):
    """Revoke a client and every token it holds."""
    client, tokens = _client_change(ctx, "clients.revoke", lambda conn: actions.revoke(conn, name))
    click.echo(f"revoked {client.name} ({client.client_id}) and {tokens} token(s)")


@clients_group.command("rotate")
@click.argument("name")
@pass_ctx
def clients_rotate(ctx: Context, name):
    """Give a client a new secret (its access tokens stop working); print it, once."""
    issued = _client_change(ctx, "clients.rotate", lambda conn: actions.rotate(conn, name))
    click.echo(f"client_id:     {issued.client.client_id}")
    click.echo(f"client_secret: {issued.secret}")
    click.echo("The old secret no longer works; the new one will not be shown again.")


@clients_group.command("token")
@click.argument("name")
@pass_ctx
def clients_token(ctx: Context, name):
    """Issue a long-lived bearer token for a SCIM client (Okta, Entra ID); print it, once."""
    issued = _client_change(ctx, "clients.token", lambda conn: actions.issue_token(conn, name))
    click.echo(issued.secret)
    click.echo(f"A static bearer token for {issued.client.name}; it will not be shown again, and it works until "
               "the client is revoked.", err=True)
