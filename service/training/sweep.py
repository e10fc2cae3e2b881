"""Training in, lapse and restore: record completions; suspend a lapsed person's grants once; restore exactly those.

Checks deny from the instant of a lapse without this module (service/access/api.py
reads the facts live). The sweep records each new lapse once: the grants on the
resources the course gates go suspended with reason `training_lapsed:<course>`,
journaled (kind suspend) with an e-mail queued in the same transaction and sent
after commit. A completion that brings the person back into compliance restores
the grants suspended for a training lapse, and no others (kind restore).
Writers lock the person's row, so a sweep and an import never interleave.
"""

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg

from connectors import mail
from policies import Code, Policy, Reason
from service import db, journal
from service.errors import DatabaseUnavailable, Skipped
from service.training import store
from service.training.plan import (
    ACCEPTED,
    AMBIGUOUS_PERSON,
    DUPLICATE,
    INVALID,
    LAPSED_PREFIX,
    UNKNOWN_PERSON,
    Completion,
    Lapse,
    Plan,
    Result,
    Standing,
    parse_completion,
    plan,
)

MAX_ATTEMPTS = 24  # an e-mail is tried this many times (with a growing pause, about a day), then left for an admin
SWEEP_ACTOR = "job:training_sweep"
MAIL_ACTOR = "job:mail_deliver"


# --- training in ---------------------------------------------------------------------------------


def record_completions(conn: psycopg.Connection, raws: Sequence, *, policy: Policy, now: datetime,
                       actor: str) -> list[Result]:
    """In one transaction: check each item, insert it (idempotent on source and source_id), restore, journal."""
    courses = {t.course for t in policy.training}
    results: dict[int, Result] = {}
    valid: dict[int, Completion] = {}
    for index, raw in enumerate(raws):
        try:
            valid[index] = parse_completion(raw, courses, now)
        except ValueError as e:
            results[index] = Result(index, INVALID, str(e))
    with conn.transaction():
        found = store.resolve_people(conn, {c.person for c in valid.values()})
        store.lock_people(conn, [n.person_id for n in found.values() if n.person_id and not n.deleted])
        events = []
        for index, completion in valid.items():
            named = found[completion.person]
            refused = _not_one_person(index, completion.person, named)
            if refused is not None:  # nothing is written for it
                results[index] = refused
                continue
            results[index], event = _record_one(conn, index, completion, named.person_id, policy, now, actor)
            if event is not None:
                events.append(event)
        for event in events:  # last: the journal's head stays locked until commit
            journal.append(conn, event)
    return [results[i] for i in sorted(results)]


def _not_one_person(index: int, ref: str, named: store.Named) -> Result | None:
    """Why a reference names no one live person to record a completion for, or None."""
    if named.ambiguous:
        return Result(index, AMBIGUOUS_PERSON, f"{ref!r} names {len(named.ambiguous)} different people "
                                               f"({', '.join(named.ambiguous)}); nothing was recorded")
    if named.person_id is None:
        return Result(index, UNKNOWN_PERSON, f"no person with userName, e-mail or employee number {ref!r}")
    if named.deleted:
        return Result(index, UNKNOWN_PERSON, f"{ref!r} is the userName of a deleted person")
    return None


def _record_one(conn, index: int, c: Completion, person_id: str, policy: Policy, now: datetime,
                actor: str) -> tuple[Result, journal.Event | None]:
    if not store.insert_completion(conn, person_id, c.course, c.completed_at, c.source, c.source_id):
        return Result(index, DUPLICATE, f"already recorded ({c.source}, {c.source_id})"), None
    detail = {"course": c.course, "completed_at": c.completed_at.isoformat(), "source": c.source,
              "source_id": c.source_id, "person": c.person}
    restored = []
    for standing in store.load_standing(conn, [person_id]):
        todo = plan(standing, policy, now).restore
        store.restore(conn, [g.id for g in todo])
        restored = sorted(g.resource for g in todo)
    if not restored:
        event = journal.Event(kind="sync", outcome="training_completed", actor=actor, subject=person_id,
                              detail=detail, policy_version=policy.version)
        return Result(index, ACCEPTED, "recorded"), event
    event = journal.Event(kind="restore", outcome="training_completed", actor=actor, subject=person_id,
                          detail={**detail, "resources": restored}, policy_version=policy.version)
    return Result(index, ACCEPTED, f"recorded; access restored: {', '.join(restored)}"), event


# --- lapse and restore: the sweep ----------------------------------------------------------------


def sweep_job(services) -> dict:
    """The worker's training_sweep job, at the real clock."""
    return sweep(services, now=datetime.now(UTC))


def sweep(services, *, now: datetime) -> dict:
    """Load everyone with grants, plan each person at `now`, write each plan in its own transaction, then send mail."""
    policy, settings, mail_on = services.policy, services.settings, bool(services.settings.smtp_host)
    counts = {"people": 0, "restored": 0, "lapses": 0, "suspended": 0, "reminders": 0}
    try:
        # Autocommit: each person's plan is written in a transaction of its own.
        with db.connect(services.database.app_url, timeout=settings.db_timeout, autocommit=True) as conn:
            everyone = store.load_standing(conn)
            counts["people"] = len(everyone)
            for standing in everyone:
                if _plan(standing, policy, now, mail_on):
                    _count(counts, _apply(conn, standing.person_id, policy, now, mail_on=mail_on))
            if mail_on:
                counts.update(deliver(conn, mail_config(settings)))
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"training sweep: {db.first_line(e)}") from None
    return counts


def _plan(standing: Standing, policy: Policy, now: datetime, mail_on: bool) -> Plan:
    # Without mail no reminder can go out, so none is recorded as sent.
    todo = plan(standing, policy, now)
    return todo if mail_on else dataclasses.replace(todo, reminders=())


def _count(counts: dict, done: Plan) -> None:
    counts["restored"] += len(done.restore)
    counts["lapses"] += len(done.lapses)
    counts["suspended"] += len(done.suspend)
    counts["reminders"] += len(done.reminders)


def _apply(conn: psycopg.Connection, person_id: str, policy: Policy, now: datetime, *, mail_on: bool) -> Plan:
    """Lock the person, plan again on fresh facts, and write that plan with its journal rows and e-mails."""
    with conn.transaction():
        store.lock_people(conn, [person_id])
        standing = next(iter(store.load_standing(conn, [person_id])), None)
        todo = _plan(standing, policy, now, mail_on) if standing else Plan()
        if not todo:
            return todo
        store.restore(conn, [g.id for g in todo.restore])
        for grant, course in todo.suspend:
            store.suspend(conn, grant.id, LAPSED_PREFIX + course)
        events = [_restore_event(standing, todo, policy)] if todo.restore else []
        if todo.lapses:
            events.append(_record_lapses(conn, standing, todo, policy, mail_on))
        for course, lapses_at, days in todo.reminders:
            events.append(_record_reminder(conn, standing, course, lapses_at, days, policy))
        for event in events:
            journal.append(conn, event)
    return todo


def _restore_event(standing: Standing, todo: Plan, policy: Policy) -> journal.Event:
    return journal.Event(kind="restore", outcome="training_compliant", actor=SWEEP_ACTOR, subject=standing.person_id,
                         detail={"resources": sorted(g.resource for g in todo.restore)}, policy_version=policy.version)


def _record_lapses(conn, standing: Standing, todo: Plan, policy: Policy, mail_on: bool) -> journal.Event:
    names = {t.course: t.name for t in policy.training}
    suspended = sorted(g.resource for g, _ in todo.suspend)
    for lapse in todo.lapses:
        gated = sorted(g.resource for g, c in todo.suspend if c == lapse.course)
        store.record_lapse(conn, standing.person_id, lapse.course, lapse.lapses_at, lapse.state, gated)
    to, cc = _recipients(standing.email, standing.manager_email)
    if mail_on and to:
        store.queue_mail(conn, "training_lapsed", standing.person_id, to, cc, *_lapse_mail(standing, todo, names,
                                                                                             policy))
    reasons = [_reason(lapse, names) for lapse in todo.lapses]
    return journal.Event(
        kind="suspend", outcome="training_lapsed", actor=SWEEP_ACTOR, subject=standing.person_id,
        reasons=tuple({"code": r.code, "text": r.text} for r in reasons), policy_version=policy.version,
        detail={"resources": suspended, "lapses": [{"course": lapse.course, "state": lapse.state,
                                                    "lapses_at": lapse.lapses_at.isoformat()} for lapse in todo.lapses],
                "notified": (to + cc) if mail_on else [],
                "mail": ("queued" if to else "no address") if mail_on else "off"})


def _reason(lapse: Lapse, names: dict) -> Reason:
    name = names.get(lapse.course, lapse.course)
    if lapse.state == "missing":
        text = f"{name} was never completed; it was due by {_at(lapse.lapses_at)}"
    else:
        text = f"{name} lapsed at {_at(lapse.lapses_at)}"
    return Reason.of(Code.TRAINING_LAPSED, text, lapse.course)


def _record_reminder(conn, standing: Standing, course: str, lapses_at: datetime, days: tuple[int, ...],
                     policy: Policy) -> journal.Event:
    for d in days:
        store.record_reminder(conn, standing.person_id, course, lapses_at, d)
    requirement = next(t for t in policy.training if t.course == course)
    to, _ = _recipients(standing.email, standing.manager_email)
    if to:
        gated = sorted(g.resource for g in standing.grants if requirement.gates_resource(g.resource))
        subject = f"Reminder: {requirement.name} is due by {_at(lapses_at)}"
        body = (f"Hello {standing.name},\n\nyour {requirement.name} lapses at {_at(lapses_at)}. Complete it before "
                f"then to keep your access to {', '.join(_resource_names(gated, policy))}.\n\n-- Gatehouse\n")
        store.queue_mail(conn, "training_reminder", standing.person_id, to, [], subject, body)
    return journal.Event(kind="notify", outcome="training_reminder", actor=SWEEP_ACTOR, subject=standing.person_id,
                         policy_version=policy.version, detail={
                             "course": course, "lapses_at": lapses_at.isoformat(), "days_before": list(days),
                             "to": to})


def _recipients(email: str | None, manager_email: str | None) -> tuple[list[str], list[str]]:
    """The person, with their manager in copy; the manager alone when the person has no address."""
    if email:
        return [email], [manager_email] if manager_email and manager_email != email else []
    return ([manager_email], []) if manager_email else ([], [])


def _lapse_mail(standing: Standing, todo: Plan, names: dict, policy: Policy) -> tuple[str, str]:
    courses = ", ".join(names.get(lapse.course, lapse.course) for lapse in todo.lapses)
    suspended = sorted(g.resource for g, _ in todo.suspend)
    lines = [f"Hello {standing.name},", ""]
    lines += [f"- {_reason(lapse, names).text}." for lapse in todo.lapses]
    if suspended:
        lines += ["", f"Your access to {', '.join(_resource_names(suspended, policy))} is suspended."]
    lines += ["", "Complete the training: access comes back as soon as the completion is recorded.", "",
              "-- Gatehouse"]
    return f"Access suspended: {courses} lapsed", "\n".join(lines) + "\n"


def _resource_names(keys: list[str], policy: Policy) -> list[str]:
    return [f"{policy.resource(k).name} ({k})" if policy.resource(k) else k for k in keys]


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- the outbox ----------------------------------------------------------------------------------


def mail_config(settings) -> mail.SmtpConfig:
    """The SMTP settings as the mail connector takes them."""
    return mail.SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
                           starttls=settings.smtp_starttls, tls=settings.smtp_tls,
                           ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
                           user=settings.smtp_user, password=settings.smtp_password)


def deliver(conn: psycopg.Connection, config: mail.SmtpConfig, *, limit: int = 500) -> dict:
    """Send queued e-mail after commit: claim each, send it, mark it sent with its journal row (kind notify).

    A claim is taken in its own transaction before sending, so two runs (the mail job, a sweep, two workers)
    never send one message twice; a runner that dies after its claim leaves the message to the claim's lease.
    Failures stay queued for a later run.
    """
    pending = store.unsent_mail(conn, MAX_ATTEMPTS, limit)
    sent = failed = 0
    try:
        if pending:
            with mail.session(config) as smtp:
                while pending:
                    q = pending.pop(0)
                    if not store.claim_mail(conn, q.id, MAX_ATTEMPTS):
                        continue  # another run has it
                    try:
                        ok = _send(conn, smtp, q)
                    except mail.MailUnavailable:
                        failed += 1
                        raise
                    sent, failed = sent + ok, failed + (not ok)
    except mail.MailUnavailable as e:  # the server is away: the rest wait for a later run
        rest = [q.id for q in pending if store.claim_mail(conn, q.id, MAX_ATTEMPTS)]
        store.mark_failed(conn, rest, str(e))
        failed += len(rest)
    return {"mail_sent": sent, "mail_failed": failed}


def _send(conn: psycopg.Connection, smtp: mail.Session, q: store.Outgoing) -> bool:
    """True if the server took the message (marked sent, journaled); False if it refused it (marked failed)."""
    message = mail.Mail(tuple(q.to), q.subject, q.body, tuple(q.cc), html=q.html, message_id=f"notification.{q.id}")
    try:
        smtp.send(message)
    except mail.MailUnavailable as e:
        store.mark_failed(conn, [q.id], str(e))
        _journal_delivery(conn, q, "mail_failed", error=str(e))
        raise
    except mail.MailError as e:
        store.mark_failed(conn, [q.id], str(e))
        _journal_delivery(conn, q, "mail_failed", error=str(e))
        return False
    with conn.transaction():
        store.mark_sent(conn, q.id)
        _journal_delivery(conn, q, "mail_sent")
    return True


def _journal_delivery(conn: psycopg.Connection, q: store.Outgoing, outcome: str, **detail) -> None:
    with conn.transaction():
        journal.append(conn, journal.Event(kind="notify", outcome=outcome, actor=MAIL_ACTOR, subject=q.person_id,
                                           detail={"notification": q.id, "mail": q.kind, "to": q.to, "cc": q.cc,
                                                   "subject": q.subject, **detail}))


def deliver_job(services) -> dict:
    """The worker's mail_deliver job: the outbox, every minute."""
    settings = services.settings
    if not settings.smtp_host:
        raise Skipped("no SMTP server configured (GATEHOUSE_SMTP_HOST)")
    try:
        with db.connect(services.database.app_url, timeout=settings.db_timeout, autocommit=True) as conn:
            return deliver(conn, mail_config(settings))
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"mail delivery: {db.first_line(e)}") from None
