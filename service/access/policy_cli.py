"""Command line for access as code: `gatehouse policy apply [--dry-run | --confirm]`."""

import sys

import click

from service import journal
from service.access import policy as access_policy
from service.access.resources import sync_resources
from service.bootstrap import load_policy
from service.cli_context import Context, operator_actor, pass_ctx

HELD_EXIT = 3  # as `gatehouse sync ldap`: the change was held for confirmation


@click.group("policy")
def policy_group():
    """The policy file: group → resource rules applied as code."""


@policy_group.command("apply")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--confirm", is_flag=True, help="Release the change held for this version of the file.")
@pass_ctx
def policy_apply(ctx: Context, dry_run: bool, confirm: bool):
    """Apply the policy file's [[rules]]; exit 3 when the change is (or would be) held by the guard."""
    if dry_run and confirm:
        raise click.UsageError("give --dry-run or --confirm, not both")
    policy = load_policy(ctx.settings.policy_file)
    source, actor = str(ctx.settings.policy_file), operator_actor()
    if confirm:
        outcome = _confirm(ctx, policy, actor)
    else:
        outcome = access_policy.apply_policy(ctx.database.app_url, policy, source=source, actor=actor,
                                             timeout=ctx.settings.db_timeout, dry_run=dry_run)
    for line in change_lines(outcome):
        click.echo(line)
    version = outcome.version[:12]
    if outcome.state == "held":
        click.echo(f"policy {version} HELD (run {outcome.run_id}): {outcome.message}")
        click.echo("confirm: gatehouse policy apply --confirm (or Confirm in the console)")
        sys.exit(HELD_EXIT)
    if dry_run:
        click.echo(f"dry run of policy {version} (nothing written): {outcome.message}")
        if outcome.held:
            sys.exit(HELD_EXIT)
        return
    click.echo(f"policy {version} {outcome.state}: {outcome.message}")


def _confirm(ctx: Context, policy, actor: str) -> access_policy.Outcome:
    with ctx.transaction() as conn:
        sync_resources(conn, policy)
        run = access_policy.held_for(conn, policy.version)
        outcome = access_policy.confirm(conn, run.id, actor=actor)
        journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=actor, policy_version=run.version,
                                           detail={"action": "policy.confirm", "run": run.id,
                                                   "counts": outcome.counts()}))
        return outcome


def change_lines(outcome: access_policy.Outcome) -> list[str]:
    """What an application changes (or would): rules, then grants, one line each."""
    verb = "would " if outcome.state in ("dry-run", "held") else ""
    lines = [f"{verb}add rule: members of {g} get {r}" for g, r in outcome.rules.added]
    lines += [f"{verb}remove rule: members of {g} get {r}" for g, r in outcome.rules.removed]
    lines += [f"{verb}respell rule's group: {g} ({r})" for g, r in outcome.rules.renamed]
    lines += [f"{verb}{'grant' if c.state == 'active' else 'end'} {c.resource} "
              f"{'to' if c.state == 'active' else 'for'} {c.user_name}"
              for c in sorted(outcome.changes, key=lambda c: (c.state != "active", c.user_name.lower(), c.resource))]
    return lines
