"""A target's health: quarantine after repeated failures, escalation of deliveries sent but never confirmed.

Quarantine follows Entra's provisioning rule: after the policy's `quarantine_after` failed attempts in a row a
target gets nothing but one probe at 6 h, 12 h, 24 h, then daily; the first delivery that succeeds releases it.
A row the target took (`sent`) that no re-read has confirmed within `confirm_within_seconds` is escalated once.
Each of these is journaled (kind outbound) and mailed to the admins in the same transaction; the mail is queued
only when SMTP is configured, and the journal row says who was told.
"""

from datetime import datetime, timedelta

from policies import Target as TargetPolicy
from service import journal
from service.admins import store as admins
from service.outbox import store

ACTOR = "job:outbox"
QUARANTINE_HOURS = (6, 12, 24)  # then daily: the last one repeats


def quarantine_wait(step: int) -> timedelta:
    """How long a quarantined target waits before its step-th probe (0: the first)."""
    return timedelta(hours=QUARANTINE_HOURS[min(step, len(QUARANTINE_HOURS) - 1)])


def may_try(health: store.Health | None, now: datetime) -> bool:
    """False while a target is quarantined and its next probe is not due."""
    return health is None or health.probe_at is None or health.probe_at <= now


def succeeded(conn, target: str, *, mail_on: bool) -> None:
    """A confirmed delivery, in its transaction: failures reset; a quarantined target is released (admins told)."""
    before = store.record_success(conn, target)
    if before.quarantined_at is not None:
        told = _tell_admins(conn, mail_on, "outbox_released", f"Gatehouse: target {target} is delivering again",
                            f"The outbound target {target} accepted a delivery after {before.failures} failures; "
                            "it is out of quarantine and its backlog is being delivered.")
        _journal(conn, "released", target, failures=before.failures, notified=told)


def failed(conn, policy: TargetPolicy, error: str, *, now: datetime, mail_on: bool) -> None:
    """A failed attempt, in its transaction: counted; at the threshold, or a failed probe, quarantine (again)."""
    health = store.record_failure(conn, policy.key, error)
    if health.quarantined_at is not None:
        step = health.quarantine_step + 1
        store.quarantine(conn, policy.key, step=step, probe_at=now + quarantine_wait(step))
        _journal(conn, "quarantined", policy.key, failures=health.failures, step=step,
                 probe_at=(now + quarantine_wait(step)).isoformat(), error=error)
    elif health.failures >= policy.quarantine_after:
        probe = now + quarantine_wait(0)
        store.quarantine(conn, policy.key, step=0, probe_at=probe)
        told = _tell_admins(conn, mail_on, "outbox_quarantined", f"Gatehouse: target {policy.key} quarantined",
                            f"The outbound target {policy.key} ({policy.type}) failed {health.failures} times in a "
                            f"row; the last error: {error}\n\nIt is quarantined: its deliveries wait, and one is "
                            f"tried at {probe:%Y-%m-%d %H:%M} UTC, then after 12 h, 24 h and daily until one "
                            "succeeds. See the console's Outbound page.")
        _journal(conn, "quarantined", policy.key, failures=health.failures, step=0, probe_at=probe.isoformat(),
                 error=error, notified=told)


def escalate(conn, policies: list[TargetPolicy], *, now: datetime, mail_on: bool) -> int:
    """Escalate, once each, the rows sent but not confirmed within their target's confirm_within_seconds."""
    count = 0
    for policy in policies:
        with conn.transaction():
            late = [r for r in store.unconfirmed(conn, policy.key, now - timedelta(
                seconds=policy.confirm_within_seconds)) if store.mark_escalated(conn, r.id)]
            if not late:
                continue
            lines = "\n".join(f"- row {r.id}: {r.op} {r.user_name} ({r.cause}), last error: {r.last_error or '-'}"
                              for r in late)
            told = _tell_admins(conn, mail_on, "outbox_unconfirmed",
                                f"Gatehouse: {len(late)} change(s) at {policy.key} not confirmed",
                                f"The target {policy.key} took these changes but no re-read has shown them done "
                                f"within {policy.confirm_within_seconds} s:\n{lines}\n\nThey are still retried; "
                                "see the console's Outbound page.")
            for r in late:
                journal.append(conn, journal.Event(
                    kind="outbound", outcome="escalated", actor=ACTOR, subject=r.person_id, resource=r.resource,
                    reasons=({"code": "unconfirmed", "text": f"sent, not confirmed within "
                              f"{policy.confirm_within_seconds} s"},),
                    detail={"outbox": r.id, "target": r.target, "op": r.op, "user": r.user_name,
                            "attempts": r.attempts, "notified": told}))
            count += len(late)
    return count


def _tell_admins(conn, mail_on: bool, kind: str, subject: str, body: str) -> list[str]:
    to = [a.email for a, _keys in admins.list_admins(conn)]
    if mail_on and to:
        store.queue_admin_mail(conn, kind, to, subject, body)
        return to
    return []


def _journal(conn, outcome: str, target: str, **detail) -> None:
    journal.append(conn, journal.Event(kind="outbound", outcome=outcome, actor=ACTOR, detail={"target": target,
                                                                                              **detail}))
