"""The pure review rules: reviewer choice, the guard, reminders, the recommendation, the second stage."""

from datetime import UTC, datetime, timedelta

import pytest

from policies.model import ReviewItem, Reviews
from policies.reviews import (
    ADMINS,
    MANAGER,
    OWNER,
    SKIP_MANAGER,
    escalating,
    held,
    missed,
    pick_reviewer,
    recommend,
    reminders_due,
    second_stage,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
REVIEWS = Reviews(90, 14, bulk_items=50, bulk_seconds=60, unused_days=60, escalate_days=3)


@pytest.mark.parametrize(("chain", "owners", "expected"), [
    ((("m", True), ("mm", True)), ("o",), ("m", MANAGER)),
    ((("m", False), ("mm", True)), ("o",), ("mm", SKIP_MANAGER)),
    (((None, False), ("mm", True)), ("o",), ("mm", SKIP_MANAGER)),
    ((("m", False), ("mm", False)), ("o",), ("o", OWNER)),
    ((("m", False), ("p", True)), ("p", "o2"), ("o2", OWNER)),  # the person is never their own reviewer
    (((None, False), (None, False)), ("p",), (None, ADMINS)),
])
def test_the_reviewer_is_the_first_who_qualifies_and_never_the_person(chain, owners, expected):
    assert pick_reviewer("p", chain, owners) == expected


def item(**kw):
    return ReviewItem("q4", kw.pop("due", NOW), **kw)


def test_the_guard_holds_from_the_due_instant_when_more_than_the_share_is_undecided():
    over = item(open_items=3, total_items=10, guard_share=0.2)
    assert not held(over, NOW - timedelta(seconds=1)) and held(over, NOW)
    assert not held(item(open_items=2, total_items=10, guard_share=0.2), NOW)  # exactly the share: not held
    assert not held(item(open_items=3, total_items=10, guard_share=0.2, state="confirmed"), NOW)
    assert held(item(state="held"), NOW - DAY)
    assert missed(item(open_items=2, total_items=10, guard_share=0.2), NOW)
    assert not missed(over, NOW) and not missed(item(decision="approve"), NOW + DAY)


def test_reminders_are_due_once_per_offset_and_never_after_the_due_instant():
    due = NOW + 10 * DAY
    assert reminders_due(due, (7, 3, 1), (), NOW) == ()
    assert reminders_due(due, (7, 3, 1), (), due - 7 * DAY) == (7,)
    assert reminders_due(due, (7, 3, 1), (7,), due - 6 * DAY) == ()
    assert reminders_due(due, (7, 3, 1), (), due - 2 * DAY) == (7, 3)  # a late worker: one reminder for both
    assert reminders_due(due, (7, 3, 1), (), due) == ()
    assert not escalating(due, REVIEWS, due - 4 * DAY) and escalating(due, REVIEWS, due - 3 * DAY)


def test_unused_is_no_allowed_check_within_the_window_for_a_grant_older_than_it():
    old = NOW - 400 * DAY
    assert recommend(None, old, REVIEWS, NOW) == "revoke"
    assert recommend(NOW - 61 * DAY, old, REVIEWS, NOW) == "revoke"
    assert recommend(NOW - 59 * DAY, old, REVIEWS, NOW) == "approve"
    assert recommend(None, NOW - 10 * DAY, REVIEWS, NOW) == "approve"  # too new to be called unused


def test_approvals_against_advice_or_too_fast_go_to_a_second_stage():
    assert second_stage(approvals=1, against_advice=1, seconds_open=600, reviews=REVIEWS)
    assert second_stage(approvals=51, against_advice=0, seconds_open=59, reviews=REVIEWS)
    assert second_stage(approvals=51, against_advice=0, seconds_open=61, reviews=REVIEWS) is None
    assert second_stage(approvals=50, against_advice=0, seconds_open=1, reviews=REVIEWS) is None
