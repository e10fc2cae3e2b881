"""`gatehouse reviews start|list|show|export|extend`: the operator's side of access reviews."""

import sys
from datetime import UTC, datetime

import click

from service.cli_context import Context, operator_actor, pass_ctx, table, when
from service.errors import NotFound
from service.reviews import campaigns
from service.reviews import store as reviews


@click.group("reviews")
def reviews_group():
    """Access review campaigns."""


@reviews_group.command("start")
@click.option("--resources", required=True, help="Comma-separated resource keys, e.g. vpn,github.")
@click.option("--due", default=None, help="Days until the deadline, e.g. 14d (default: the policy's due_days).")
@click.option("--key", default=None, help="The campaign's name (default: <year>q<quarter>-<mmdd>-<random>).")
@pass_ctx
def start(ctx: Context, resources: str, due: str | None, key: str | None):
    """Start a campaign over the active grants of the listed resources, and queue the reviewers' mail."""
    with ctx.services() as services:
        due_days = campaigns.parse_due(due) if due else services.policy.reviews.due_days
        keys = [r.strip() for r in resources.split(",") if r.strip()]
        with ctx.transaction() as conn:
            started = campaigns.start(conn, services.policy, resources=keys, due_days=due_days,
                                      now=datetime.now(UTC), origin="operator", actor=operator_actor(),
                                      base_url=ctx.settings.public_base_url, key=key)
    click.echo(f"campaign {started.key}: {started.items} items, {started.reviewers} reviewers, "
               f"{started.admins_queue} in the admins' queue, due {when(started.due_at)}")


@reviews_group.command("list")
@pass_ctx
def list_(ctx: Context):
    """Every campaign, newest first."""
    with ctx.connection() as conn:
        found = reviews.campaigns(conn)
    rows = [("CAMPAIGN", "STATE", "ORIGIN", "RESOURCES", "DUE", "OPEN", "ITEMS")]
    rows += [(c.key, c.state, c.origin, ",".join(c.resources), when(c.due_at), c.items_open, c.items_total)
             for c in found]
    table(rows)


@reviews_group.command("show")
@click.argument("campaign")
@pass_ctx
def show(ctx: Context, campaign: str):
    """A campaign's counts per resource and reviewer."""
    with ctx.connection() as conn:
        c = _campaign(conn, campaign)
        per = reviews.counts_by(conn, c.id)
    click.echo(f"campaign {c.key}: {c.state}, due {when(c.due_at)}, {c.items_open} of {c.items_total} undecided")
    table([("RESOURCE", "REVIEWER", "OPEN", "APPROVED", "REVOKED", "MISSED"), *per])


@reviews_group.command("export")
@click.argument("campaign")
@pass_ctx
def export(ctx: Context, campaign: str):
    """Every item with its decision and evidence, as CSV on stdout."""
    from service.reviews.views import export_csv

    with ctx.connection() as conn:
        c = _campaign(conn, campaign)
        sys.stdout.write(export_csv(reviews.items(conn, c.id)))


@reviews_group.command("extend")
@click.argument("campaign")
@click.option("--days", required=True, help="Days from now (a held campaign) or from the due date (open).")
@pass_ctx
def extend(ctx: Context, campaign: str, days: str):
    """Move a campaign's deadline later (a held campaign opens again)."""
    with ctx.transaction() as conn:
        due_at = campaigns.extend(conn, campaign, days=campaigns.parse_due(days), now=datetime.now(UTC),
                                  actor=operator_actor())
    click.echo(f"campaign {campaign}: due {when(due_at)}")


def _campaign(conn, ref: str) -> reviews.Campaign:
    c = reviews.campaign(conn, ref)
    if c is None:
        raise NotFound(f"no campaign {ref!r}")
    return c
