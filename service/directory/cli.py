"""Command line for directory sync: `gatehouse sync ldap|confirm|discard|runs`."""

import sys

import click

from service.cli_context import Context, operator_actor, pass_ctx, table, when

HELD_EXIT = 3  # `sync ldap`: the run was held for an admin to confirm


@click.group("sync")
def sync_group():
    """Directory sync (LDAP / Active Directory)."""


class _Progress:
    """A progress bar on a terminal (entries read, then changes applied); one plain line per page otherwise."""

    def __init__(self, expected: int):
        self.tty, self.expected, self.bar, self.shown = sys.stdout.isatty(), expected, None, 0

    def __call__(self, stage: str, n: int) -> None:
        if stage == "applied":
            self.close()
            click.echo(f"applied {n} changes")
        elif not self.tty:
            click.echo(f"read {n} entries")
        else:
            if self.bar is None:
                self.bar = click.progressbar(length=max(self.expected, n, 1), label="entries read", show_pos=True)
                self.bar.__enter__()
            self.bar.length = max(self.bar.length, n)  # the directory grew since the last run
            self.bar.update(n - self.shown)
            self.shown = n

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@sync_group.command("ldap")
@click.option("--full", is_flag=True, help="Reconcile everything (removals too), not only what changed.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing (no run record, no journal).")
@pass_ctx
def sync_ldap(ctx: Context, full: bool, dry_run: bool):
    """Sync people and groups from LDAP now; exit 1 when the run failed, 3 when it was (or, with --dry-run, would
    be) held for confirmation."""
    from service import logs
    from service.directory import store as sync
    from service.directory import sync as ldapsync

    logs.configure("ERROR")  # the outcome is printed below; a failed run's warning would repeat it
    with ctx.services() as services:
        with ctx.connection() as conn:
            progress = _Progress(sync.expected_entries(conn, "full" if full else "incremental"))
        try:
            result = ldapsync.run_sync(services, full=full, dry_run=dry_run, on_progress=progress,
                                       actor=operator_actor())
        finally:
            progress.close()
    if dry_run and result.plan is not None:
        for line in _plan_lines(result.plan):
            click.echo(line)
    if result.state == "failed":
        run = f" (run {result.run_id})" if result.run_id else ""
        raise ldapsync.SyncFailed(f"ldap sync failed{run}: {result.message}")
    if result.state == "held":
        click.echo(f"run {result.run_id} HELD: {result.message}")
        click.echo(
            f"confirm: gatehouse sync confirm {result.run_id}    discard: gatehouse sync discard {result.run_id}"
        )
        sys.exit(HELD_EXIT)
    label = "dry run (nothing written)" if dry_run else f"run {result.run_id} applied"
    click.echo(f"{label}: {result.message}")
    if result.would_hold:  # the exit code a script would get from the real run
        sys.exit(HELD_EXIT)


def _plan_lines(plan) -> list[str]:
    """What a plan changes, one line per person, group and conflict."""
    verbs = {"create": "create", "join": "join", "update": "update", "revive": "revive", "groups": "update"}
    lines = []
    for e in plan.people:
        what = ", ".join(f"{k} {v[0]!r} -> {v[1]!r}" if isinstance(v, list) else f"{k} {v}"
                         for k, v in e["changes"].items())
        verb = "disable (access ends)" if e["leaver"] else verbs[e["op"]]
        lines.append(f"would {verb} {e.get('user_name') or e['id']} ({e['dn'] or e['id']}): {what}")
    lines += [f"would {'deactivate' if r['unlink'] else 'remove'} {r['user_name']} ({r['dn']}): access ends"
              for r in plan.removals]
    lines += [f"would {g['op']} group {g['name']}" for g in plan.groups]
    lines += [f"conflict {c['dn']}: {c['reason']}" for c in plan.conflicts]
    return lines


def _decide(ctx: Context, run_id: str, action: str) -> None:
    from service import journal
    from service.directory import sync as ldapsync

    actor = operator_actor()
    decide = ldapsync.confirm if action == "sync.confirm" else ldapsync.discard
    with ctx.connection() as conn, conn.transaction():
        result = decide(conn, run_id, actor=actor)
        journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=actor, detail={
            "action": action, "run": result.run_id, "counts": result.counts}))
    click.echo(f"run {result.run_id} {result.state}: {result.message}")


@sync_group.command("confirm")
@click.argument("run_id")
@pass_ctx
def sync_confirm(ctx: Context, run_id: str):
    """Apply a held run's plan exactly as it was held (refused if the people it touches changed since)."""
    _decide(ctx, run_id, "sync.confirm")


@sync_group.command("discard")
@click.argument("run_id")
@pass_ctx
def sync_discard(ctx: Context, run_id: str):
    """Drop a held run; nothing of it is applied."""
    _decide(ctx, run_id, "sync.discard")


@sync_group.command("runs")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@pass_ctx
def sync_runs(ctx: Context, limit: int):
    """Recent sync runs, newest first."""
    from service.directory import store as sync
    from service.directory import sync as ldapsync

    with ctx.connection() as conn:
        runs = sync.list_runs(conn, limit=limit)
    if not runs:
        click.echo("no sync runs")
        return
    rows = [("RUN", "KIND", "STATE", "STARTED", "FINISHED", "BY", "WHAT")]
    rows += [(r.id, r.kind, r.state, when(r.started_at), when(r.finished_at), r.decided_by or r.actor,
              r.error or r.message or ldapsync.summary(r.counts)) for r in runs]
    table(rows)
