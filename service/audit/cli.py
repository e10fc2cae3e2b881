"""`gatehouse evidence export|verify`: an auditor's bundle for a period, and its check with no database."""

import sys
from datetime import UTC, datetime

import click

from service import journal
from service.access import resources
from service.audit import evidence, query
from service.bootstrap import load_policy
from service.cli_context import Context, operator_actor, pass_ctx
from service.errors import BadRequest
from service.journal import signers


@click.group("evidence")
def evidence_group():
    """Evidence bundles for auditors: export a period, verify a bundle offline."""


@evidence_group.command("export")
@click.option("--from", "since", required=True, help="First day (or instant, UTC) of the period, e.g. 2026-07-01.")
@click.option("--to", "until", required=True, help="Last day of the period (inclusive), or an instant (exclusive).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True), help="The .zip.")
@pass_ctx
def evidence_export(ctx: Context, since: str, until: str, output: str):
    """Write the bundle of [FROM, TO]: journal rows, chain, reviews, training, policies, control map, manifest."""
    start, end = query.instant(since, "--from"), query.instant(until, "--to", end=True)
    if start is None or end is None or start >= end:
        raise BadRequest("--from must be before --to")
    policy = load_policy(ctx.settings.policy_file)
    with ctx.connection() as conn:
        with conn.transaction():
            resources.record_text(conn, policy)  # the file in force now, should no serve have recorded it yet
        done = evidence.export(conn, output, since=start, until=end, policy=policy, now=datetime.now(UTC),
                               generated_by=operator_actor(), signer=signers.configured(ctx.settings))
        with conn.transaction():
            journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=operator_actor(), detail={
                "action": "evidence.export", "since": start.isoformat(), "until": end.isoformat(),
                "rows": done.rows, "first_seq": done.first_seq, "last_seq": done.last_seq,
                "sha256": evidence.file_sha256(output)}))
    click.echo(f"wrote {output}: {done.rows} journal rows"
               + (f" (seq {done.first_seq} to {done.last_seq})" if done.rows else "")
               + f", {len(done.policies)} policy version(s)")


@evidence_group.command("verify")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@click.option("--expect", "expect", multiple=True, metavar="SEQ:HASH",
              help="A row's hash written down outside (e.g. from `gatehouse journal verify`); repeatable.")
@click.option("--key", metavar="VERIFIER_KEY", help="The checkpoint key you trust (name+id+key), not the bundle's.")
def evidence_verify(bundle: str, expect: tuple[str, ...], key: str | None):
    """Check BUNDLE offline (no database, no server): prints OK, or the first problem and where (exit 1)."""
    anchors = []
    for item in expect:
        seq, _, digest = item.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise BadRequest(f"--expect {item!r}: want SEQ:HASH (a seq and 64 hex digits)")
        anchors.append((int(seq), digest.lower()))
    result = evidence.verify(bundle, expect=tuple(anchors), key=key)
    if not result.ok:
        click.echo(f"BAD {result.message}")
        sys.exit(1)
    click.echo(result.message)

