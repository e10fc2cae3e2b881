"""Access reviews, the pure part: who reviews an item, when a campaign is held, what is due, what is recommended."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from policies.model import ReviewItem, Reviews, require_aware

MANAGER, SKIP_MANAGER, OWNER, ADMINS = "manager", "manager's manager", "resource owner", "admins"
APPROVE, REVOKE = "approve", "revoke"


def pick_reviewer(person_id: str, chain: Sequence[tuple[str | None, bool]],
                  owners: Sequence[str]) -> tuple[str | None, str]:
    """(reviewer id, route): the active manager, else the manager's manager, else a resource owner; never oneself.

    `chain` is [(manager id, active), (manager's manager id, active)]; `owners` the ids of the live people
    the policy names as the resource's owners. None and ADMINS: nobody qualifies, the admins' queue takes it.
    """
    for (candidate, active), route in zip(chain, (MANAGER, SKIP_MANAGER), strict=False):
        if candidate is not None and active and candidate != person_id:
            return candidate, route
    for owner in owners:
        if owner != person_id:
            return owner, OWNER
    return None, ADMINS


def held(item: ReviewItem, now: datetime) -> bool:
    """Whether the guard holds the item's campaign at `now`: from the due instant, more than its share undecided.

    Decisions are refused from the due instant on, so the share is fixed then: a campaign once held stays held
    until an admin confirms (state confirmed) or extends (state open, a later due instant).
    """
    require_aware(now, "now")
    if item.state == "held":
        return True
    if item.state != "open" or now < item.due_at or item.total_items <= 0:
        return False
    return item.open_items > item.guard_share * item.total_items


def missed(item: ReviewItem, now: datetime) -> bool:
    """Undecided at or after its due instant, and not held by the guard."""
    return item.decision is None and item.due_at <= now and not held(item, now)


def reminders_due(due_at: datetime, offsets: Sequence[int], sent: Sequence[int], now: datetime) -> tuple[int, ...]:
    """The reminder offsets (days before due_at) whose instant has come and that were not sent; none once due."""
    require_aware(now, "now")
    if now >= due_at:
        return ()
    return tuple(d for d in sorted(offsets, reverse=True) if d not in sent and now >= due_at - timedelta(days=d))


def escalating(due_at: datetime, reviews: Reviews, now: datetime) -> bool:
    """Whether a reminder at `now` copies the reviewer's manager."""
    return now >= due_at - timedelta(days=reviews.escalate_days)


def recommend(last_used: datetime | None, granted_at: datetime, reviews: Reviews, now: datetime) -> str:
    """REVOKE when the grant went unused (no allowed check) for the configured window; else APPROVE.

    A grant younger than the window is not called unused: its holder has not had the time.
    """
    window = timedelta(days=reviews.unused_days)
    if now - granted_at < window:
        return APPROVE
    return REVOKE if last_used is None or now - last_used >= window else APPROVE


def second_stage(*, approvals: int, against_advice: int, seconds_open: float, reviews: Reviews) -> str | None:
    """Why a set of approvals goes to a second reviewer instead of taking effect, or None.

    Approving an item recommended for revocation, or approving more than bulk_items within bulk_seconds of
    opening the page (rubber-stamping), is not taken on one reviewer's word.
    """
    if against_advice:
        return "approved against an unused recommendation"
    if approvals > reviews.bulk_items and seconds_open < reviews.bulk_seconds:
        return f"more than {reviews.bulk_items} approvals within {reviews.bulk_seconds} s"
    return None
