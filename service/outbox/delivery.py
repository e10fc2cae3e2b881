"""The outbox job: deliver due rows to their targets, outside any transaction, and journal every step.

A row moves intent → sent (the target took the change) → confirmed (a re-read shows it); both steps, each
journaled with the target's answer, commit together once the re-read is back (one commit per delivery, not
two). A failure, or a re-read that still shows the old access, records what happened (sent, when the change
went through) and counts an attempt, then waits an exponentially growing, jittered delay (at least what
Retry-After asked); after the target's max_attempts the row is dead, for an admin to retry or discard. A row
left `intent` or `sent` by a worker that died is delivered again: the operations are idempotent, so the
effect is not doubled.
"""

import dataclasses
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.outbound import Account, DeliveryError, Target
from policies import Target as TargetPolicy
from service import db
from service.db.query import scalar
from service.errors import ConfigError
from service.outbox import health as targets_health
from service.outbox import store

ACTOR = "job:outbox"
BATCH = 500


def secret(settings: dict, prefix: str) -> str:
    """The secret a target names by file (`<prefix>_file`) or environment variable (`<prefix>_env`)."""
    if f"{prefix}_file" in settings:
        path = str(settings[f"{prefix}_file"])
        try:
            return Path(path).read_text().strip()
        except OSError as e:
            raise DeliveryError(f"cannot read {prefix} file {path}: {e.strerror}") from None
    name = str(settings.get(f"{prefix}_env", ""))
    value = os.environ.get(name)  # named by the policy file; read when a delivery needs it, so a rotation applies
    if not value:
        raise DeliveryError(f"environment variable {name} (the target's {prefix}) is not set")
    return value


def build(target: TargetPolicy) -> Target:
    """The connector for a policy target."""
    settings = target.settings
    timeout = float(settings.get("timeout_seconds", 10))
    if target.type == "scim":
        from connectors.scim_target import ClientCredentials, ScimTarget

        if "token_url" in settings:
            token = ClientCredentials(str(settings["token_url"]), str(settings["client_id"]),
                                      secret(settings, "client_secret"), scope=settings.get("scope"), timeout=timeout)
        else:
            token = secret(settings, "token")
        return ScimTarget(str(settings["url"]), token, group=settings.get("group"), timeout=timeout)
    if target.type == "ldap_group":
        from connectors.ldap_group import LdapGroupTarget

        password = secret(settings, "password") if {"password_file", "password_env"} & settings.keys() else None
        return LdapGroupTarget(str(settings["url"]), str(settings["group_dn"]), bind_dn=settings.get("bind_dn"),
                               password=password, attribute=str(settings.get("member_attribute", "member")),
                               dn_template=settings.get("dn_template"), timeout=timeout)
    if target.type == "webhook":
        from connectors.webhook import WebhookTarget

        return WebhookTarget(str(settings["url"]), secret(settings, "secret").encode(), timeout=timeout)
    if target.type == "openvpn":
        from connectors.vpn import OpenVpnTarget

        password = secret(settings, "password") if {"password_file", "password_env"} & settings.keys() else None
        return OpenVpnTarget(str(settings["url"]), password=password, timeout=timeout)
    if target.type == "command":
        from connectors.vpn import CommandTarget

        return CommandTarget(list(settings["command"]), timeout=timeout)
    raise ConfigError("GATEHOUSE_POLICY_FILE", f"target {target.key}: unknown type {target.type}")


def backoff(target: TargetPolicy, attempts: int, after: float | None, *, rand=random.random) -> float:
    """Seconds to wait after the attempts-th failure: base·2^(n-1) capped, "equal jitter", never below Retry-After."""
    ceiling = min(target.backoff_max_seconds, target.backoff_seconds * 2 ** min(attempts - 1, 30))
    delay = ceiling / 2 + rand() * ceiling / 2
    return max(delay, after or 0)


def outbox_job(services) -> dict:
    """The worker's outbox job: deliver what is due now."""
    return deliver_due(services)


def deliver_due(services, *, now: datetime | None = None, limit: int = BATCH) -> dict:
    """Deliver the due rows once each, then escalate the unconfirmed ones.

    A target that fails at the door is left alone for the rest of the run; a quarantined one gets only its
    probe (one row) when the probe is due.
    """
    now = now or datetime.now(UTC)
    targets = {t.key: t for t in services.policy.targets}
    mail_on = bool(services.settings.smtp_host)
    counts = {"confirmed": 0, "retry": 0, "dead": 0, "skipped": 0, "escalated": 0}
    with db.connect(services.database.app_url, timeout=services.settings.db_timeout, autocommit=True) as conn:
        with conn.transaction():
            rows = store.due(conn, now, limit)
            health = store.health(conn)
            known = store.accounts(conn, rows)
        failing: set[str] = set()
        probed: set[str] = set()
        recorded: set[str] = set()  # targets whose success this run has noted (once a run is enough)
        for row in rows:
            policy = targets.get(row.target)
            quarantined = row.target in health and health[row.target].quarantined_at is not None
            if (policy is None or row.target in failing or not targets_health.may_try(health.get(row.target), now)
                    or (quarantined and row.target in probed)):
                counts["skipped"] += 1
                continue
            if quarantined:
                probed.add(row.target)
            outcome = deliver(conn, row, policy, now=now, mail_on=mail_on, known=known.get(row.id),
                              note_success=row.target not in recorded)
            counts[outcome] += 1
            if outcome == "confirmed":
                recorded.add(row.target)
                probed.discard(row.target)  # the probe went through: the target is released, the rest may go
                health.pop(row.target, None)
            else:
                recorded.discard(row.target)
                failing.add(row.target)  # keep order and spare a target that is down: its next rows wait
        counts["escalated"] = targets_health.escalate(conn, list(targets.values()), now=now, mail_on=mail_on)
    return counts


def deliver(conn, row: store.Row, policy: TargetPolicy, *, now: datetime | None = None, mail_on: bool = False,
            known: tuple | None = None, note_success: bool = True) -> str:
    """One attempt at one row: apply, re-read, record sent and confirmed; or record what failed.

    `known`: the row's (e-mail, DN, remote id) when the caller loaded them for a batch; `note_success`: whether
    to record the target's success (a run records it once per target, with its first confirmation)."""
    now = now or datetime.now(UTC)
    if known is None:
        with conn.transaction():
            known = store.accounts(conn, [row])[row.id]
    email, dn, remote_id = known
    account = Account(row.person_id, row.user_name, email=email, dn=dn, remote_id=remote_id, resource=row.resource,
                      cause=row.cause, reason=row.reason)
    attempt = row.attempts + 1
    try:
        target = build(policy)
        applied = target.apply(row.op, account, idempotency_key=row.idempotency_key)
    except DeliveryError as e:
        return _failed(conn, row, policy, attempt, e, now=now, mail_on=mail_on)
    sent = dataclasses.replace(row, state="sent", attempts=attempt)
    if applied.remote_id:  # re-read the very account the change went to, by its id
        account = dataclasses.replace(account, remote_id=applied.remote_id)
    try:
        verified = target.verify(row.op, account)
        if verified is None:
            raise DeliveryError("the target answered, but a re-read still shows the access as it was")
    except DeliveryError as e:
        with conn.transaction():
            _sent(conn, row, applied, remote_id, attempt)
        return _failed(conn, sent, policy, attempt, e, now=now, mail_on=mail_on)
    # Sent and confirmed in one commit: a worker that dies before it leaves the row as it found it, delivered
    # again (idempotently) by the next run, as one that dies between two commits would.
    with conn.transaction():
        _sent(conn, row, applied, remote_id, attempt)
        if verified.remote_id and verified.remote_id not in (remote_id, applied.remote_id):
            store.remember_remote_id(conn, row, verified.remote_id)
        store.move(conn, sent, outcome="confirmed", actor=ACTOR, state="confirmed",
                   detail={"attempt": attempt, "answer": verified.detail})
        if note_success:
            targets_health.succeeded(conn, row.target, mail_on=mail_on)
    return "confirmed"


def _sent(conn, row: store.Row, applied, remote_id: str | None, attempt: int) -> None:
    """Record what the target answered to the change (in the caller's transaction)."""
    if applied.remote_id and applied.remote_id != remote_id:
        store.remember_remote_id(conn, row, applied.remote_id)
    store.move(conn, row, outcome="sent", actor=ACTOR, state="sent", attempts=attempt,
               detail={"attempt": attempt, "answer": applied.detail})


def _failed(conn, row: store.Row, policy: TargetPolicy, attempt: int, e: DeliveryError, *, now: datetime,
            mail_on: bool) -> str:
    detail = {"attempt": attempt, "error": e.message, **({"status": e.status} if e.status else {}),
              **({"retry_after": e.after} if e.after is not None else {})}
    with conn.transaction():
        current = store.get(conn, row.id, lock=True)
        if current.state not in ("intent", "sent"):  # an admin discarded it meanwhile
            return "skipped"
        if not e.permanent:  # a permanent answer is about this row (no such DN, a 400), not the target's health
            targets_health.failed(conn, policy, e.message, now=now, mail_on=mail_on)
        if e.permanent or attempt >= policy.max_attempts:
            store.move(conn, current, outcome="dead", actor=ACTOR, state="dead", attempts=attempt, error=e.message,
                       detail={**detail, "permanent": e.permanent})
            return "dead"
        wait = backoff(policy, attempt, e.after)
        at = scalar(conn, "SELECT now()") + timedelta(seconds=wait)
        store.move(conn, current, outcome="failed", actor=ACTOR, state=current.state, attempts=attempt,
                   next_attempt_at=at, error=e.message, detail={**detail, "next_attempt_at": at.isoformat()})
    return "retry"
