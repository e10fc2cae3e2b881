"""Command line for people: `gatehouse people role add|remove EMAIL hr|auditor`, journaled as the operator."""

import click

from service import journal
from service.cli_context import Context, operator_actor, pass_ctx
from service.identity import roles


@click.group("people")
def people_group():
    """People and the roles they hold."""


@people_group.group("role")
def role_group():
    """The hr and auditor roles (a person signs in through SSO to use them)."""


def _change(ctx: Context, action: str, change) -> roles.RoleChange:
    """Run `change(conn)` and journal it in one transaction."""
    with ctx.transaction() as conn:
        result, detail = change(conn)
        journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=operator_actor(),
                                           subject=result.person_id, detail={"action": action, **detail}))
    return result


_ROLE = click.Choice(roles.GRANTABLE)


@role_group.command("add")
@click.argument("email")
@click.argument("role", type=_ROLE)
@pass_ctx
def role_add(ctx: Context, email: str, role: str):
    """Give the person whose primary e-mail is EMAIL the ROLE."""
    done = _change(ctx, "roles.add", lambda conn: roles.add(conn, email, role, actor=operator_actor()))
    click.echo(f"{done.email} ({done.user_name}) now holds the {done.role} role")


@role_group.command("remove")
@click.argument("email")
@click.argument("role", type=_ROLE)
@pass_ctx
def role_remove(ctx: Context, email: str, role: str):
    """Take the ROLE from the person whose primary e-mail is EMAIL (effective at their next request)."""
    done = _change(ctx, "roles.remove", lambda conn: roles.remove(conn, email, role))
    click.echo(f"{done.email} ({done.user_name}) no longer holds the {done.role} role")
