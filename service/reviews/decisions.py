"""A reviewer's page and decisions: what they see per item (the evidence), and approve / revoke with its effect.

Reading never writes (mail scanners open links). A decision is taken in one transaction with its effect (a revoke
revokes the grant at the item's epoch at once) and its journal row (kind review), and records the evidence the page
showed. A decided item stays decided: a replayed POST changes nothing. Approvals against an "unused" recommendation,
or too many too fast, wait for a second reviewer instead of taking effect (policies.reviews.second_stage).
"""

import dataclasses
from collections.abc import Sequence
from datetime import datetime

import psycopg
from itsdangerous import BadSignature, URLSafeSerializer

from policies import Policy
from policies.reviews import APPROVE, REVOKE, recommend, second_stage
from policies.training import training_status
from service import journal
from service.errors import BadRequest, Conflict, GatehouseError, NotFound
from service.reviews import campaigns, links
from service.reviews import store as reviews

OPENED_SALT = "gatehouse.reviews.opened"
MAX_COMMENT = 2000


class Refused(GatehouseError):
    """This review link or request does not give access to these items."""

    status = 403
    code = "review_refused"


class Closed(Conflict):
    """The campaign is closed: its deadline passed, or the guard holds it."""

    code = "review_closed"


@dataclasses.dataclass(frozen=True)
class Row:
    """One item as its reviewer sees it, and the evidence recorded with a decision."""

    item: reviews.Item
    evidence: dict
    second_stage: bool  # routed to this reviewer as the second stage


@dataclasses.dataclass(frozen=True)
class Page:
    campaign: reviews.Campaign
    reviewer_id: str
    reviewer: str
    rows: list[Row]
    closed: bool
    delegated: list[reviews.Delegation] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Choice:
    item_id: str
    decision: str
    comment: str | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    recorded: list[str]
    already: list[str]
    second_stage: list[str]
    why: str | None


def resolve(conn: psycopg.Connection, token: str) -> tuple[reviews.Campaign, str]:
    """The campaign and reviewer a link names; Refused if it is forged, altered, or names no such pair."""
    secret = reviews.secret(conn, links.SECRET_NAME, create=False)  # read only: no link exists without it
    if secret is None:
        raise Refused("this review link is not valid: no review links were issued")
    try:
        campaign_id, reviewer_id = links.read(secret, token)
    except links.LinkRefused as e:
        raise Refused(str(e)) from None
    campaign = reviews.campaign(conn, campaign_id)
    if campaign is None:
        raise Refused("this review link names no campaign")
    return campaign, reviewer_id


def page(conn: psycopg.Connection, policy: Policy, campaign: reviews.Campaign, reviewer_id: str, *,
         now: datetime) -> Page:
    """The reviewer's items with the evidence, read only."""
    person = reviews.person(conn, reviewer_id)
    found = reviews.items(conn, campaign.id, reviewer_id=reviewer_id)
    handed = reviews.delegations_from(conn, campaign.id, reviewer_id)
    if person is None or not (found or handed):
        raise Refused("this link gives access to no review items")
    evidence = _evidence(conn, policy, found, now)
    rows = [Row(i, evidence[i.id], i.second_stage_by == reviewer_id) for i in found]
    return Page(campaign, reviewer_id, person[0], rows, closed(campaign, now), handed)


def closed(campaign: reviews.Campaign, now: datetime) -> bool:
    return campaign.state != "open" or now >= campaign.due_at


def _evidence(conn, policy: Policy, found: Sequence[reviews.Item], now: datetime) -> dict[str, dict]:
    last = reviews.last_use(conn, [(i.person_id, i.resource) for i in found])
    done = reviews.completions(conn, sorted({i.person_id for i in found}))
    out = {}
    for i in found:
        used = last.get((i.person_id, i.resource))
        started = datetime.fromisoformat(i.snapshot["started_at"])
        statuses = training_status(done.get(i.person_id, {}), policy.requirements_for(i.resource), now,
                                   started_at=started, department=i.snapshot.get("department"))
        training = ", ".join(f"{s.course}: {s.state}" for s in statuses) or "none required"
        granted = datetime.fromisoformat(i.snapshot["granted_at"])
        out[i.id] = {"last_used": used.isoformat() if used else None, "training": training,
                     "recommendation": recommend(used, granted, policy.reviews, now),
                     "unused_days": policy.reviews.unused_days, "via": i.snapshot.get("via"),
                     "shown_at": now.isoformat()}
    return out


def opened_token(secret: bytes, now: datetime) -> str:
    """When the page was rendered, signed: the pace check's start, which a form cannot move."""
    return URLSafeSerializer(secret, salt=OPENED_SALT).dumps(now.timestamp())


def opened_at(secret: bytes, token: str | None, now: datetime) -> float:
    """Seconds since the page was opened; 0 (the fastest pace) when the value is missing or forged."""
    try:
        return max(0.0, now.timestamp() - float(URLSafeSerializer(secret, salt=OPENED_SALT).loads(token or "")))
    except (BadSignature, TypeError, ValueError):
        return 0.0


def _check(policy: Policy, choices: Sequence[Choice]) -> None:
    """BadRequest for a choice that is neither approve nor revoke, a long comment, or a revoke without one."""
    for ch in choices:
        if ch.decision not in (APPROVE, REVOKE):
            raise BadRequest(f"a decision is approve or revoke, got {ch.decision!r}")
        if ch.comment and len(ch.comment) > MAX_COMMENT:
            raise BadRequest(f"a comment has at most {MAX_COMMENT} characters")
        if ch.decision == REVOKE and policy.reviews.comment_required_for_revoke and not (ch.comment or "").strip():
            raise BadRequest("a revoke needs a comment saying why (the policy requires it)")


def decide(conn: psycopg.Connection, policy: Policy, campaign_id: str, reviewer_id: str,
           choices: Sequence[Choice], *, now: datetime, seconds_open: float, actor: str,
           base_url: str) -> Outcome:
    """Record the choices in one transaction; the caller commits. Refused / Closed / BadRequest change nothing."""
    if not choices:
        raise BadRequest("choose approve or revoke for at least one item")
    _check(policy, choices)
    c = reviews.campaign(conn, campaign_id, lock=True)  # decisions and the deadline take turns on the campaign
    if c is None:
        raise Refused("no such campaign")
    if closed(c, now):
        raise Closed(f"campaign {c.key} is closed: decisions were due by {c.due_at.isoformat()}")
    mine = {i.id: i for i in reviews.items(conn, c.id, reviewer_id=reviewer_id, ids=[ch.item_id for ch in choices],
                                           lock=True)}
    strangers = [ch.item_id for ch in choices if ch.item_id not in mine]
    if strangers:
        raise Refused(f"{len(strangers)} of these items are not yours to review in campaign {c.key}")
    live = [ch for ch in choices if _open_for(mine[ch.item_id], reviewer_id)]
    evidence = _evidence(conn, policy, [mine[ch.item_id] for ch in live], now)
    first = [ch for ch in live if ch.decision == APPROVE and mine[ch.item_id].second_stage_by != reviewer_id]
    against = [ch for ch in first if evidence[ch.item_id]["recommendation"] == REVOKE]
    why = second_stage(approvals=len(first), against_advice=len(against), seconds_open=seconds_open,
                       reviews=policy.reviews)
    staged = (against if against else first) if why else []
    staged_ids = {ch.item_id for ch in staged}
    events, recorded, targets = [], [], set()
    for ch in live:
        item, proof = mine[ch.item_id], {**evidence[ch.item_id], "seconds_open": round(seconds_open, 1)}
        if ch.item_id in staged_ids:
            target = _second_reviewer(conn, policy, item, reviewer_id)
            proof["first_approval"] = {"by": actor, "at": now.isoformat(), "comment": ch.comment}
            _stage(conn, item, target, why, proof)
            targets.update([target] if target else [])
            events.append(_event(c, item, "second_stage", actor, ch, proof, policy, to=target, why=why))
            continue
        reviews.decide(conn, item.id, ch.decision, by=actor, at=now, comment=ch.comment, evidence=proof)
        if ch.decision == REVOKE:
            reviews.revoke_grant(conn, item.grant_id, item.grant_epoch, campaigns.REVOKED_PREFIX + c.key)
        recorded.append(item.id)
        events.append(_event(c, item, ch.decision, actor, ch, proof, policy))
    reviews.count_decided(conn, c.id, len(recorded))
    if targets:
        campaigns.queue_requests(conn, c.id, c.key, c.due_at, base_url, only=sorted(targets))
    for event in events:
        journal.append(conn, event)
    already = [ch.item_id for ch in choices if ch not in live]
    return Outcome(recorded, already, sorted(staged_ids), why)


def _open_for(item: reviews.Item, reviewer_id: str) -> bool:
    """Undecided, and not waiting for someone else's second stage."""
    if item.decision is not None:
        return False
    return item.second_stage_by is None or item.second_stage_by == reviewer_id


def _second_reviewer(conn, policy: Policy, item: reviews.Item, reviewer_id: str) -> str | None:
    """The first reviewer's manager, else a resource owner; never the person or the first reviewer."""
    me = reviews.person(conn, reviewer_id)
    excluded = {item.person_id, reviewer_id}
    if me and me[2] and me[2] not in excluded and reviews.person(conn, me[2]):
        return me[2]
    owners = reviews.people_by_email(conn, policy.resource(item.resource).owners if policy.resource(item.resource)
                                     else ())
    return next((o for o in owners.values() if o not in excluded), None)


def _stage(conn, item: reviews.Item, target: str | None, why: str, proof: dict) -> None:
    if target is None:  # nobody else qualifies: the admins' queue
        conn.execute("UPDATE review_items SET reviewer_id = NULL, second_stage_why = %s WHERE id = %s", (why, item.id))
        return
    reviews.route_second_stage(conn, item.id, target, why, proof)


def _event(c: reviews.Campaign, item: reviews.Item, outcome: str, actor: str, ch: Choice, proof: dict,
           policy: Policy, **extra) -> journal.Event:
    reasons = ()
    if outcome == REVOKE:
        reasons = ({"code": campaigns.REVOKED_PREFIX + c.key, "text": f"the reviewer revoked access in review "
                                                                     f"{c.key}"},)
    return journal.Event(kind="review", outcome=outcome, actor=actor, subject=item.person_id, resource=item.resource,
                         reasons=reasons, policy_version=policy.version,
                         detail={"campaign": c.key, "item": item.id, "grant": item.grant_id,
                                 "reviewer": item.second_stage_by or item.reviewer_id, "choice": ch.decision,
                                 "comment": ch.comment, "evidence": proof, **extra})


def delegate(conn: psycopg.Connection, campaign_id: str, reviewer_id: str, to: str, *, comment: str | None,
             now: datetime, actor: str, base_url: str) -> reviews.Delegation:
    """Hand the reviewer's whole open set to another manager, who gets a mail with their own link; journaled.

    Refused when the delegate would review their own access or confirm their own first-stage approval.
    """
    if comment and len(comment) > MAX_COMMENT:
        raise BadRequest(f"a comment has at most {MAX_COMMENT} characters")
    c = reviews.campaign(conn, campaign_id, lock=True)  # decisions, delegations and the deadline take turns
    if c is None:
        raise Refused("no such campaign")
    if closed(c, now):
        raise Closed(f"campaign {c.key} is closed: decisions were due by {c.due_at.isoformat()}")
    to_id = reviews.manager_by_ref(conn, to or "")
    if to_id is None:
        raise BadRequest(f"no active manager {to!r} (give their user name or e-mail)")
    if to_id == reviewer_id:
        raise BadRequest("you cannot delegate your review to yourself")
    mine = [i for i in reviews.items(conn, c.id, reviewer_id=reviewer_id, undecided=True, lock=True)
            if _open_for(i, reviewer_id) and i.missed_at is None]
    if not mine:
        raise BadRequest("you have no open items to delegate")
    own = [i for i in mine if i.person_id == to_id or (i.second_stage_by == reviewer_id and i.reviewer_id == to_id)]
    if own:
        raise BadRequest(f"{to} cannot review {len(own)} of these items: nobody reviews their own access or "
                         "confirms their own approval")
    moved = reviews.delegate_items(conn, c.id, reviewer_id, to_id)
    reviews.record_delegation(conn, c.id, reviewer_id, to_id, moved, comment, now)
    campaigns.queue_requests(conn, c.id, c.key, c.due_at, base_url, only=[to_id])
    journal.append(conn, journal.Event(kind="review", outcome="delegated", actor=actor, subject=reviewer_id,
                                       detail={"campaign": c.key, "from": reviewer_id, "to": to_id, "items": moved,
                                               "item_ids": sorted(i.id for i in mine), "comment": comment}))
    return reviews.delegations_from(conn, c.id, reviewer_id)[-1]


def admin_decide(conn: psycopg.Connection, policy: Policy, item_id: str, choice: Choice, *, now: datetime,
                 actor: str, admin_email: str) -> tuple[reviews.Campaign, reviews.Item]:
    """An admin decides an item of the admins' queue (no reviewer qualified); the caller commits with the proof.

    No second stage: the decision is already bound to a security-key assertion. An admin never decides their own
    access: such an item stays in the queue for another admin.
    """
    _check(policy, [choice])
    found = reviews.item(conn, item_id)
    if found is None:
        raise NotFound(f"no review item {item_id!r}")
    c = reviews.campaign(conn, found.campaign_id, lock=True)  # the same lock order as a reviewer's decision
    if closed(c, now):
        raise Closed(f"campaign {c.key} is closed: decisions were due by {c.due_at.isoformat()}")
    it = reviews.item(conn, item_id, lock=True)
    if it.reviewer_id is not None or it.second_stage_by is not None:
        raise Conflict("this item has a reviewer: it is not in the admins' queue")
    if it.decision is not None or it.missed_at is not None:
        raise Conflict(f"this item is decided already ({it.decision or 'missed'})")
    if (reviews.email_of(conn, it.person_id) or "") == admin_email.lower():
        raise Refused("this is your own access: another admin decides it")
    proof = {**_evidence(conn, policy, [it], now)[it.id], "via": "admins_queue"}
    reviews.decide(conn, it.id, choice.decision, by=actor, at=now, comment=choice.comment, evidence=proof)
    if choice.decision == REVOKE:
        reviews.revoke_grant(conn, it.grant_id, it.grant_epoch, campaigns.REVOKED_PREFIX + c.key)
    reviews.count_decided(conn, c.id, 1)
    journal.append(conn, _event(c, it, choice.decision, actor, choice, proof, policy, queue="admins"))
    return c, it
