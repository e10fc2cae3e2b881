"""Command line for admins: `gatehouse admin enroll` (break-glass enrollment from the server host)."""

import click

from service import endpoints, journal
from service.admins import store as admins
from service.cli_context import Context, operator_actor, pass_ctx


@click.group("admin")
def admin_group():
    """Admins (break-glass enrollment from the server host)."""


@admin_group.command("enroll")
@click.argument("email")
@click.option("--name", "display_name", help="The admin's display name.")
@pass_ctx
def admin_enroll(ctx: Context, email: str, display_name: str | None):
    """Make EMAIL an admin (if needed) and print a single-use enrollment URL, valid 15 minutes."""
    actor = operator_actor()
    with ctx.connection() as conn, conn.transaction():
        admin = admins.admin_by_email(conn, email)
        if admin is None or not admin.active:
            admin = admins.create_admin(conn, email, display_name=display_name, created_by=actor)
        token = admins.create_enrollment(conn, admin.id, created_by=actor)
        served = endpoints.latest(conn)
        journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=actor,
                                           detail={"action": "admins.enroll", "email": admin.email}))
    # GATEHOUSE_BASE_URL given here wins; else the URL the running service announced; else this CLI's default.
    base = ctx.settings.base_url or served or ctx.settings.public_base_url
    click.echo(f"{base}/admin/enroll/{token}")
    if not ctx.settings.base_url and not served:
        click.echo(f"No `gatehouse serve` has started on this database yet: the link assumes {base}.", err=True)
    click.echo(f"Single use, valid {admins.ENROLLMENT_MINUTES} minutes.", err=True)
