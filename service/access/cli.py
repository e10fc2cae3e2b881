"""Command line for access: `gatehouse access explain USER RESOURCE`, the check in plain words (not journaled)."""
import sys
from datetime import UTC, datetime

import click
import psycopg

from policies import decide, training_status
from service import db
from service.access import facts as access
from service.bootstrap import load_policy
from service.cli_context import Context, pass_ctx
from service.errors import DatabaseUnavailable


@click.group("access")
def access_group():
    """Access decisions."""


@access_group.command("explain")
@click.argument("user")
@click.argument("resource")
@pass_ctx
def access_explain(ctx: Context, user: str, resource: str):
    """Say whether USER may use RESOURCE now, why, and the dates that matter; exit 1 on deny (not journaled)."""
    policy = load_policy(ctx.settings.policy_file)
    try:
        with ctx.connect() as conn:
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
