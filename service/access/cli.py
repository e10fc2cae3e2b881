"""Command line for access: `gatehouse access explain` (the check in plain words, not journaled) and the
operator's `access grant|revoke|list`, journaled with the operator as actor through the use cases the console uses.
"""
import sys
from datetime import UTC, datetime

import click
import psycopg

from policies import decide, training_status
from service import db
from service.access import facts as access
from service.access import grants
from service.access import store as grant_store
from service.bootstrap import load_policy
from service.cli_context import Context, operator_actor, pass_ctx, table, when
from service.errors import BadRequest, DatabaseUnavailable

MAX_TEXT = 256


@click.group("access")
def access_group():
    """Access decisions and grants by hand."""


def _text(value: str, what: str) -> str:
    """A userName, resource key or reason as typed: printable, not blank, at most 256 characters."""
    value = value.strip()
    if not value or len(value) > MAX_TEXT or not value.isprintable():
        raise BadRequest(f"{what} must be 1 to {MAX_TEXT} printable characters, got {value[:40]!r}")
    return value


def _change(ctx: Context, use_case, user: str, resource: str, reason: str) -> grant_store.Change:
    """Run grant or revoke with its journal row in one transaction, as the operator."""
    user, resource, reason = _text(user, "USER"), _text(resource, "RESOURCE"), _text(reason, "--reason")
    with ctx.transaction() as conn:
        return use_case(conn, user, resource, actor=operator_actor(), via="operator", reason=reason)


@access_group.command("grant")
@click.argument("user")
@click.argument("resource")
@click.option("--reason", required=True, help="Why (journaled), e.g. a ticket number.")
@pass_ctx
def access_grant(ctx: Context, user: str, resource: str, reason: str):
    """Give USER (a userName) RESOURCE now, whatever the grant's state was; journaled with you as actor."""
    change = _change(ctx, grants.grant, user, resource, reason)
    click.echo(f"granted {change.resource} to {change.user_name}")


@access_group.command("revoke")
@click.argument("user")
@click.argument("resource")
@click.option("--reason", required=True, help="Why (journaled and kept on the grant).")
@pass_ctx
def access_revoke(ctx: Context, user: str, resource: str, reason: str):
    """End USER's grant on RESOURCE; a group rule never brings it back. Journaled with you as actor."""
    change = _change(ctx, grants.revoke, user, resource, reason)
    click.echo(f"revoked {change.resource} from {change.user_name}: {change.reason}")


@access_group.command("list")
@click.option("--user", help="Only this person's grants (userName).")
@click.option("--resource", help="Only the grants on this resource (key).")
@pass_ctx
def access_list(ctx: Context, user: str | None, resource: str | None):
    """Grants of every state: who, what, state, reason, given by, since."""
    if user is not None and resource is not None:
        raise click.UsageError("give --user or --resource, not both")
    with ctx.connection(what="the grants could not be read") as conn:
        found = grant_store.list_grants(conn, user=user and _text(user, "--user"),
                                   resource=resource and _text(resource, "--resource"))
    if not found:
        click.echo("no grants")
        return
    rows = [("USER", "RESOURCE", "STATE", "REASON", "BY", "SINCE")]
    rows += [(g.user_name, g.resource, g.state, g.reason or "-", g.granted_by,
              when(g.granted_at if g.state == "active" else g.updated_at)) for g in found]
    table(rows)


@access_group.command("explain")
@click.argument("user")
@click.argument("resource")
@pass_ctx
def access_explain(ctx: Context, user: str, resource: str):
    """Say whether USER may use RESOURCE now, why, and the dates that matter; exit 1 on deny (not journaled)."""
    policy = load_policy(ctx.settings.policy_file)
    try:
        with ctx.connection() as conn:
            facts = access.load_facts(conn, user, resource, identifiers=ctx.settings.check_identifiers).facts
    except psycopg.Error as e:
        raise DatabaseUnavailable(f"the facts could not be read: {db.first_line(e)}") from None
    now = datetime.now(UTC)
    decision = decide(facts, policy, now)
    for line in _explanation(user, facts, policy, decision, now):
        click.echo(line)
    if not decision.allow:
        sys.exit(1)


def _explanation(user, facts, policy, decision, now) -> list[str]:
    """The decision in plain words: every reason, then each course's and review's dates."""
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
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _relative(moment, now) -> str:
    seconds = int((moment - now).total_seconds())
    unit, length = next((u, n) for u, n in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
                        if abs(seconds) >= n or n == 1)
    count = abs(seconds) // length
    amount = f"{count} {unit}" + ("" if count == 1 else "s")
    return f"in {amount}" if seconds > 0 else f"{amount} ago"
