"""Campaigns: start one (admin, operator, schedule, a mover), reach its deadline, hold it, confirm or extend it.

Each use case takes a connection and `now`, writes its change with its journal rows (kind review) and the mail it
queues in one transaction; the outbox sends after commit. Checks deny from the due instant by themselves (the
facts carry each item and its campaign's counts: policies.reviews.held decides the guard at `now`).
"""

import dataclasses
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

import psycopg

from policies import Policy
from policies.model import ReviewItem
from policies.reviews import ADMINS, MANAGER, OWNER, SKIP_MANAGER, held
from service import journal
from service.errors import BadRequest, Conflict, NotFound
from service.reviews import links, mails
from service.reviews import store as reviews
from service.training import store as outbox

MISSED_PREFIX, REVOKED_PREFIX = "review_missed:", "review_revoked:"
DEADLINE_ACTOR = "job:reviews_deadline"
MAX_DUE_DAYS = 365
# The route of an item by how its reviewer was found (store._ITEMS picks them as policies.reviews.pick_reviewer).
ROUTES = {"manager": MANAGER, "managers_manager": SKIP_MANAGER, "owner": OWNER, "admins": ADMINS}


@dataclasses.dataclass(frozen=True)
class Started:
    id: str
    key: str
    items: int
    reviewers: int
    admins_queue: int
    due_at: datetime


def parse_due(text: str) -> int:
    """'14d' or '14' → 14 (days); BadRequest otherwise."""
    value = text.strip().lower().removesuffix("d")
    if not value.isdigit() or not 1 <= int(value) <= MAX_DUE_DAYS:
        raise BadRequest(f"due must be a number of days between 1 and {MAX_DUE_DAYS} (e.g. 14d), got {text!r}")
    return int(value)


def start(conn: psycopg.Connection, policy: Policy, *, resources: Sequence[str], due_days: int, now: datetime,
          origin: str, actor: str, base_url: str, key: str | None = None,
          people: Sequence[str] | None = None) -> Started:
    """Snapshot the active grants of `resources`, pick a reviewer per item, queue one mail per reviewer."""
    resources = sorted(set(resources))
    unknown = [r for r in resources if policy.resource(r) is None]
    if not resources or unknown:
        raise BadRequest(f"unknown resource {unknown[0]!r}" if unknown else "name at least one resource")
    if not 1 <= due_days <= MAX_DUE_DAYS:
        raise BadRequest(f"due must be between 1 and {MAX_DUE_DAYS} days, got {due_days}")
    key = key or _new_key(conn, now, origin)
    if reviews.key_taken(conn, key):
        raise Conflict(f"a campaign {key!r} exists already")
    due_at = now + timedelta(days=due_days)
    campaign_id = reviews.create_campaign(conn, key=key, origin=origin, resources=resources, started_at=now,
                                          due_at=due_at, guard_share=policy.reviews.guard_share, created_by=actor,
                                          policy_version=policy.version)
    count, queued = reviews.insert_items(conn, campaign_id, resources, owners=_owners(conn, policy, resources),
                                         routes=ROUTES, people=people)
    sent = queue_requests(conn, campaign_id, key, due_at, base_url)
    why = "no active manager, manager's manager or resource owner other than the person"
    events = [journal.Event(kind="review", outcome="admins_queue", actor=actor, subject=person_id, resource=resource,
                            policy_version=policy.version,  # nobody may review these: the admins' console lists them
                            detail={"campaign": key, "grant": grant_id, "user": user, "why": why})
              for person_id, resource, grant_id, user in queued]
    events.append(journal.Event(kind="review", outcome="started", actor=actor, policy_version=policy.version,
                                detail={"campaign": key, "origin": origin, "resources": resources,
                                        "due_at": due_at.isoformat(), "items": count, "reviewers": sent,
                                        "admins_queue": len(queued)}))
    journal.append_many(conn, events)
    return Started(campaign_id, key, count, sent, len(queued), due_at)


def _new_key(conn: psycopg.Connection, now: datetime, origin: str) -> str:
    prefix = "mover" if origin == "mover" else f"{now:%Y}q{(now.month - 1) // 3 + 1}"
    return f"{prefix}-{now:%m%d}-{secrets.token_hex(3)}"


def _owners(conn: psycopg.Connection, policy: Policy, resources: Sequence[str]) -> dict[str, tuple[str, ...]]:
    emails = {r: policy.resource(r).owners for r in resources}
    found = reviews.people_by_email(conn, [e for owners in emails.values() for e in owners])
    return {r: tuple(found[e] for e in owners if e in found) for r, owners in emails.items()}


def queue_requests(conn: psycopg.Connection, campaign_id: str, key: str, due_at: datetime, base_url: str,
                   *, only: Sequence[str] | None = None) -> int:
    """One mail per reviewer (or those `only`) with how many people and grants wait, and their link."""
    count = 0
    secret = reviews.secret(conn, links.SECRET_NAME)
    base = base_url.rstrip("/")
    params = []
    for r in reviews.reviewers(conn, campaign_id, ids=only):
        count += 1
        if not r.email:
            continue
        url = f"{base}/reviews/{links.make(secret, campaign_id, r.id)}"
        subject, text, html = mails.request(r.name, r.people, r.open_items, key, due_at, url)
        params.append(("review_request", r.id, [r.email], [], subject, text, html))
    outbox.queue_mails(conn, params)
    return count


# --- the deadline --------------------------------------------------------------------------------


def as_item(c: reviews.Campaign) -> ReviewItem:
    """The campaign as the guard sees it (policies.reviews.held)."""
    return ReviewItem(c.key, c.due_at, None, c.state, c.items_open, c.items_total, c.guard_share)


def deadline(conn: psycopg.Connection, policy: Policy, *, now: datetime, base_url: str) -> dict:
    """Each due campaign in its own transaction: held by the guard (journaled, admins mailed), or its undecided
    items missed, their grants revoked (one journal row each), reviewers and people told; then closed."""
    counts = {"campaigns": 0, "held": 0, "revoked": 0}
    for due in reviews.due_campaigns(conn, now):
        with conn.transaction():
            c = reviews.campaign(conn, due.id, lock=True)
            if c.state not in ("open", "confirmed") or c.due_at > now:
                continue  # another runner or an admin got there first
            counts["campaigns"] += 1
            if held(as_item(c), now):
                _hold(conn, c, now, base_url, policy)
                counts["held"] += 1
            else:
                counts["revoked"] += _revoke_missed(conn, c, now, actor=c.confirmed_by or DEADLINE_ACTOR,
                                                    policy=policy)
    return counts


def _hold(conn, c: reviews.Campaign, now: datetime, base_url: str, policy: Policy) -> None:
    reviews.set_state(conn, c.id, "held", held_at=now)
    admins = [r[0] for r in conn.execute("SELECT email FROM admins WHERE active ORDER BY email")]
    if admins:
        subject, text, html = mails.held(c.key, c.items_open, c.items_total,
                                         f"{base_url.rstrip('/')}/admin/reviews/{c.key}")
        outbox.queue_mail(conn, "review_held", None, admins, [], subject, text, html)
    journal.append(conn, journal.Event(
        kind="review", outcome="held", actor=DEADLINE_ACTOR, policy_version=policy.version,
        detail={"campaign": c.key, "undecided": c.items_open, "items": c.items_total, "guard_share": c.guard_share,
                "admins_mailed": admins}))


def _revoke_missed(conn, c: reviews.Campaign, now: datetime, *, actor: str, policy: Policy) -> int:
    missed, revoked = reviews.miss_and_revoke(conn, c.id, now, MISSED_PREFIX + c.key)
    reviews.set_state(conn, c.id, "closed", closed_at=now)
    _tell_missed(conn, c.key, revoked)
    reason = {"code": MISSED_PREFIX + c.key, "text": f"review {c.key} was due at {mails.at(c.due_at)} and not approved"}
    events = [journal.Event(kind="revoke", outcome="review_missed", actor=actor, subject=r.person_id,
                            resource=r.resource, policy_version=policy.version, reasons=(reason,),
                            detail={"campaign": c.key, "item": r.item_id, "grant": r.grant_id,
                                    "reviewer": r.reviewer_id})
              for r in revoked]
    events.append(journal.Event(kind="review", outcome="closed", actor=actor, policy_version=policy.version,
                                detail={"campaign": c.key, "missed": missed, "revoked": len(revoked)}))
    journal.append_many(conn, events, chunk=5000)  # last: the journal's head stays locked until commit
    return len(revoked)


def _tell_missed(conn, key: str, revoked: Sequence[reviews.Revoked]) -> None:
    """Each person and each reviewer once per campaign, whatever the number of their grants; queued in bulk."""
    first: dict[str, tuple[str, bool]] = {}  # person id -> (the resource named, as reviewer?)
    for r in revoked:
        first.setdefault(r.person_id, (r.resource, False))
        if r.reviewer_id:
            first.setdefault(r.reviewer_id, (r.resource, True))
    found = reviews.people_named(conn, list(first))
    mail = []
    for person_id, (resource, as_reviewer) in first.items():
        name, email = found.get(person_id, (None, None))
        if email:
            subject, text, html = mails.missed(name, key, resource, reviewer=as_reviewer)
            mail.append(("review_missed", person_id, [email], [], subject, text, html))
    outbox.queue_mails(conn, mail)


def confirm(conn: psycopg.Connection, ref: str, *, now: datetime, actor: str) -> reviews.Campaign:
    """An admin confirms a held campaign: its undecided items are missed from now, the deadline job revokes."""
    c = _locked(conn, ref)
    if c.state != "held":
        raise Conflict(f"campaign {c.key} is {c.state}, not held")
    reviews.set_state(conn, c.id, "confirmed", confirmed_by=actor)
    journal.append(conn, journal.Event(kind="review", outcome="confirmed", actor=actor,
                                       detail={"campaign": c.key, "undecided": c.items_open}))
    return c


def extend(conn: psycopg.Connection, ref: str, *, days: int, now: datetime, actor: str) -> datetime:
    """Move a campaign's due instant `days` from now (held or open); reviewers can decide again until then."""
    c = _locked(conn, ref)
    if c.state not in ("open", "held"):
        raise Conflict(f"campaign {c.key} is {c.state}; only an open or held campaign can be extended")
    if not 1 <= days <= MAX_DUE_DAYS:
        raise BadRequest(f"days must be between 1 and {MAX_DUE_DAYS}, got {days}")
    due_at = max(now, c.due_at) + timedelta(days=days) if c.state == "open" else now + timedelta(days=days)
    reviews.set_state(conn, c.id, "open", due_at=due_at, held_at=None)
    journal.append(conn, journal.Event(kind="review", outcome="extended", actor=actor,
                                       detail={"campaign": c.key, "from": c.due_at.isoformat(),
                                               "to": due_at.isoformat(), "was": c.state}))
    return due_at


def _locked(conn, ref: str) -> reviews.Campaign:
    c = reviews.campaign(conn, ref, lock=True)
    if c is None:
        raise NotFound(f"no campaign {ref!r}")
    return c


# --- the schedule and movers ---------------------------------------------------------------------


def scheduled(conn: psycopg.Connection, policy: Policy, *, now: datetime, base_url: str) -> Started | None:
    """Start the policy's campaign when the last scheduled one began cadence_days ago or more (or never)."""
    last = reviews.last_started(conn, "schedule")
    if last is not None and now - last < timedelta(days=policy.reviews.cadence_days):
        return None
    resources = policy.reviews.resources or tuple(r.key for r in policy.resources)
    return start(conn, policy, resources=resources, due_days=policy.reviews.due_days, now=now, origin="schedule",
                 actor="job:reviews_schedule", base_url=base_url)


def movers(conn: psycopg.Connection, policy: Policy, *, now: datetime, base_url: str) -> list[Started]:
    """People whose manager or department changed: their grants, reviewed by the new manager, one campaign each."""
    started = []
    resources = [r.key for r in policy.resources]
    for person_id in reviews.take_movers(conn):
        if not reviews.snapshot(conn, resources, people=[person_id]):
            continue
        started.append(start(conn, policy, resources=resources, due_days=policy.reviews.mover_due_days, now=now,
                             origin="mover", actor="job:reviews_movers", base_url=base_url, people=[person_id]))
    return started

