"""The training rule on plain values: lapse instants, states, reminders."""

from datetime import UTC, datetime, timedelta

import pytest

from policies import TrainingRequirement, TrainingStatus, lapses_at, reminders_due, training_status

UTC = UTC
SECOND, DAY = timedelta(seconds=1), timedelta(days=1)
STARTED = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
COMPLETED = datetime(2024, 1, 5, 14, 30, tzinfo=UTC)
SECURITY = TrainingRequirement(
    "security-awareness", "Security awareness", 365, 14, frozenset({"vpn"}), "everyone", (30, 7, 1)
)
PRIVACY = TrainingRequirement("privacy", "Privacy for HR", 365, 0, frozenset({"*"}), frozenset({"hr"}))
LAPSE = COMPLETED + 379 * DAY
NEWCOMER_LAPSE = STARTED + 14 * DAY


def status(completed_at: datetime | None, now: datetime, requirement=SECURITY) -> TrainingStatus:
    completions = {} if completed_at is None else {requirement.course: completed_at}
    (only,) = training_status(completions, [requirement], now, started_at=STARTED, department="hr")
    return only


def test_lapse_instants():
    assert lapses_at(SECURITY, COMPLETED, STARTED) == LAPSE
    assert lapses_at(SECURITY, None, STARTED) == NEWCOMER_LAPSE


@pytest.mark.parametrize(
    "completed_at, now, state",
    [
        (COMPLETED, LAPSE - 30 * DAY - SECOND, "ok"),
        (COMPLETED, LAPSE - 30 * DAY, "due_soon"),
        (COMPLETED, LAPSE - SECOND, "due_soon"),
        (COMPLETED, LAPSE, "lapsed"),
        (None, STARTED, "due_soon"),
        (None, NEWCOMER_LAPSE - SECOND, "due_soon"),
        (None, NEWCOMER_LAPSE, "missing"),
    ],
)
def test_states(completed_at, now, state):
    result = status(completed_at, now)
    assert (result.state, result.completed_at) == (state, completed_at)
    assert result.denies is (state in ("lapsed", "missing"))


def test_only_courses_for_the_department_in_policy_order():
    both = [PRIVACY, SECURITY]
    eng = training_status({}, both, STARTED, started_at=STARTED, department="eng")
    hr = training_status({}, both, STARTED, started_at=STARTED, department="hr")
    assert [s.course for s in eng] == ["security-awareness"]
    assert [s.course for s in hr] == ["privacy", "security-awareness"]


def test_a_course_with_no_grace_is_missing_from_the_start():
    assert status(None, STARTED, PRIVACY).state == "missing"


@pytest.mark.parametrize(
    "now, next_reminder",
    [
        (LAPSE - 40 * DAY, 30),
        (LAPSE - 30 * DAY, 7),
        (LAPSE - 7 * DAY - SECOND, 7),
        (LAPSE - DAY, None),
        (LAPSE + DAY, None),
    ],
)
def test_next_reminder(now, next_reminder):
    assert status(COMPLETED, now).next_reminder == next_reminder


@pytest.mark.parametrize(
    "now, sent, due",
    [
        (LAPSE - 30 * DAY - SECOND, set(), ()),
        (LAPSE - 30 * DAY, set(), (30,)),
        (LAPSE - 30 * DAY, {30}, ()),
        (LAPSE - 7 * DAY, {30}, (7,)),
        (LAPSE - 7 * DAY, set(), (30, 7)),
        (LAPSE - SECOND, {30}, (7, 1)),
        (LAPSE - SECOND, {30, 7, 1}, ()),
        (LAPSE, set(), ()),
    ],
)
def test_reminders_due(now, sent, due):
    assert reminders_due(status(COMPLETED, now), SECURITY.reminder_days, sent, now) == due


def test_a_newcomer_is_reminded_at_once():
    now = STARTED + SECOND
    assert reminders_due(status(None, now), SECURITY.reminder_days, set(), now) == (30,)


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="now"):
        training_status({}, [SECURITY], datetime(2024, 1, 1), started_at=STARTED, department=None)
    with pytest.raises(ValueError, match="now"):
        reminders_due(status(None, STARTED), (30,), set(), datetime(2024, 1, 1))


def test_without_reminders_a_completed_course_is_ok_until_it_lapses():
    quiet = TrainingRequirement("quiet", "Quiet", 365, 14, frozenset({"vpn"}))
    lapse = lapses_at(quiet, COMPLETED, STARTED)
    assert status(COMPLETED, lapse - SECOND, quiet).state == "ok"  # no reminder window: never due_soon
    assert status(COMPLETED, lapse, quiet).state == "lapsed"


@pytest.mark.parametrize("call", [
    lambda now: training_status({}, [SECURITY], now, started_at=STARTED, department=None),
    lambda now: reminders_due(status(None, STARTED), (7,), (), now),
])
def test_now_is_named_when_it_is_naive(call):
    with pytest.raises(ValueError, match=r"^now must be a timezone-aware datetime"):
        call(datetime(2024, 1, 2))
