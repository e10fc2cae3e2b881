"""`gatehouse outbox list|targets|retry|discard`: the operator's view of deliveries and their dead letters."""

import click

from service.cli_context import Context, operator_actor, pass_ctx, table, when
from service.outbox import store

STATES = ("intent", "sent", "confirmed", "dead", "discarded")


@click.group("outbox")
def outbox_group():
    """Deliveries of grant changes to the downstream targets."""


@outbox_group.command("list")
@click.option("--state", type=click.Choice(STATES), help="only rows in this state (dead: the dead letters)")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@pass_ctx
def outbox_list(ctx: Context, state: str | None, limit: int):
    """Outbox rows, newest first: target, person, operation, state, attempts, next attempt, last error."""
    with ctx.connection() as conn:
        found = store.rows(conn, state=state, limit=limit)
    if not found:
        click.echo("no outbox rows")
        return
    head = [("ID", "TARGET", "USER", "OP", "CAUSE", "STATE", "ATTEMPTS", "NEXT", "LAST ERROR")]
    table(head + [(r.id, r.target, r.user_name or "-", r.op, r.cause, r.state, r.attempts,
                   when(r.next_attempt_at) if r.state in ("intent", "sent") else "-", r.last_error or "-")
                  for r in found])


@outbox_group.command("targets")
@pass_ctx
def outbox_targets(ctx: Context):
    """Per target: backlog, oldest pending, unconfirmed and escalated, dead letters, last success, quarantine."""
    with ctx.connection() as conn:
        found = store.summary(conn)
    rows = [("TARGET", "TYPE", "ENABLED", "BACKLOG", "OLDEST PENDING", "UNCONFIRMED", "ESCALATED", "DEAD",
             "LAST SUCCESS", "QUARANTINE")]
    table(rows + [(t.key, t.type, "yes" if t.enabled else "no", t.backlog, when(t.oldest_pending), t.unconfirmed,
                   t.escalated, t.dead, when(t.last_success),
                   f"until {when(t.probe_at)} ({t.failures} failures)" if t.quarantined_at else "-")
                  for t in found])


@outbox_group.command("retry")
@click.argument("row_id", type=int)
@pass_ctx
def outbox_retry(ctx: Context, row_id: int):
    """Send a dead letter again (due now, attempts from zero); refused if a later change supersedes it."""
    with ctx.connection() as conn, conn.transaction():
        row = store.retry(conn, row_id, actor=operator_actor(), via="cli")
    click.echo(f"outbox row {row.id} ({row.op} {row.user_name} at {row.target}) queued again")


@outbox_group.command("discard")
@click.argument("row_id", type=int)
@pass_ctx
def outbox_discard(ctx: Context, row_id: int):
    """Give up on an unfinished row: it is never delivered; the journal says who decided."""
    with ctx.connection() as conn, conn.transaction():
        row = store.discard(conn, row_id, actor=operator_actor(), via="cli")
    click.echo(f"outbox row {row.id} ({row.op} {row.user_name} at {row.target}) discarded")
