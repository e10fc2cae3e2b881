"""The worker's review jobs: schedule (the policy's cadence), reminders, the deadline, movers.

Each takes the services and the real clock; `run(services, now=...)` forms take `now` for tests. A job writes
each campaign in a transaction of its own; the outbox (mail_deliver) sends what they queue.
"""

from datetime import UTC, datetime

import psycopg

from policies.reviews import escalating, reminders_due
from service import db, journal
from service.errors import DatabaseUnavailable
from service.reviews import campaigns, links, mails
from service.reviews import store as reviews
from service.training import store as outbox

REMIND_ACTOR = "job:reviews_remind"


def _connect(services):
    return db.connect(services.database.app_url, timeout=services.settings.db_timeout, autocommit=True)


def _guarded(what: str, fn):
    try:
        return fn()
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"{what}: {db.first_line(e)}") from None


def deadline(services, *, now: datetime) -> dict:
    """reviews_deadline: hold or revoke every campaign whose due instant has come."""
    def go():
        with _connect(services) as conn:
            return campaigns.deadline(conn, services.policy, now=now, base_url=services.settings.public_base_url)
    return _guarded("reviews deadline", go)


def schedule(services, *, now: datetime) -> dict:
    """reviews_schedule: start the policy's campaign when its cadence has come round."""
    def go():
        with _connect(services) as conn, conn.transaction():
            conn.execute("LOCK TABLE review_campaigns IN SHARE ROW EXCLUSIVE MODE")  # one start, whoever runs
            started = campaigns.scheduled(conn, services.policy, now=now, base_url=services.settings.public_base_url)
        return {"started": started.key if started else None, "items": started.items if started else 0}
    return _guarded("reviews schedule", go)


def movers(services, *, now: datetime) -> dict:
    """reviews_movers: a small campaign for each person whose manager or department changed."""
    def go():
        with _connect(services) as conn, conn.transaction():
            started = campaigns.movers(conn, services.policy, now=now, base_url=services.settings.public_base_url)
        return {"campaigns": len(started), "items": sum(s.items for s in started)}
    return _guarded("reviews movers", go)


def remind(services, *, now: datetime) -> dict:
    """reviews_remind: each reviewer with open items, once per offset; the manager copied near the end."""
    policy, base = services.policy, services.settings.public_base_url.rstrip("/")
    counts = {"reminders": 0}

    def go():
        with _connect(services) as conn:
            for c in reviews.campaigns(conn, states=["open"]):
                if now >= c.due_at:
                    continue
                sent = reviews.reminders_sent(conn, c.id)
                for r in reviews.reviewers(conn, c.id):
                    due = reminders_due(c.due_at, policy.reviews.reminder_days, sent.get(r.id, []), now)
                    if r.open_items and due:
                        counts["reminders"] += _remind(conn, c, r, due, base, now, policy)
        return counts
    return _guarded("reviews reminders", go)


def _remind(conn, c: reviews.Campaign, r: reviews.Reviewer, due: tuple[int, ...], base: str, now: datetime,
            policy) -> int:
    with conn.transaction():
        if not reviews.record_reminder(conn, c.id, r.id, sorted(due)):
            return 0  # another worker sent it
        escalated = escalating(c.due_at, policy.reviews, now) and bool(r.manager_email)
        if r.email:
            url = f"{base}/reviews/{links.make(reviews.secret(conn, links.SECRET_NAME), c.id, r.id)}"
            subject, text, html = mails.reminder(r.name, r.open_items, c.key, c.due_at, url, days=min(due),
                                                 escalated=escalated)
            cc = [r.manager_email] if escalated and r.manager_email != r.email else []
            outbox.queue_mail(conn, "review_reminder", r.id, [r.email], cc, subject, text, html)
        journal.append(conn, journal.Event(
            kind="notify", outcome="review_reminder", actor=REMIND_ACTOR, subject=r.id, policy_version=policy.version,
            detail={"campaign": c.key, "days_before": sorted(due, reverse=True), "open_items": r.open_items,
                    "to": [r.email] if r.email else [], "escalated": escalated}))
    return 1


def deadline_job(services) -> dict:
    return deadline(services, now=datetime.now(UTC))


def schedule_job(services) -> dict:
    return schedule(services, now=datetime.now(UTC))


def movers_job(services) -> dict:
    return movers(services, now=datetime.now(UTC))


def remind_job(services) -> dict:
    return remind(services, now=datetime.now(UTC))
