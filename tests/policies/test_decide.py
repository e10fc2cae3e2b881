"""decide() on plain values: every reason, exact boundaries, several reasons at once, properties."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import (
    Code,
    Decision,
    Facts,
    Guard,
    Person,
    Policy,
    Reason,
    Resource,
    ReviewItem,
    Reviews,
    TrainingRequirement,
    decide,
    lapses_at,
    unavailable,
)
from policies.model import GRANT_STATES, REVIEW_DECISIONS

UTC = UTC
SECOND, DAY = timedelta(seconds=1), timedelta(days=1)
STARTED = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
COMPLETED = datetime(2024, 1, 5, 14, 30, tzinfo=UTC)
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

SECURITY = TrainingRequirement(
    "security-awareness", "Security awareness", 365, 14, frozenset({"vpn"}), "everyone", (30, 7, 1)
)
PRIVACY = TrainingRequirement("privacy", "Privacy for HR", 365, 0, frozenset({"*"}), frozenset({"hr"}))
CODING = TrainingRequirement("secure-coding", "Secure coding", 365, 7, frozenset({"git"}))
POLICY = Policy(
    "v1",
    (Resource("vpn", "Corporate VPN", "vpn"), Resource("git", "Git", "tool")),
    (SECURITY, PRIVACY, CODING),
    Reviews(90, 14),
    Guard(0.1, 50),
)
PERSON = Person(active=True, deleted=False, started_at=STARTED, department="eng")
FACTS = Facts(PERSON, "vpn", True, "active", None, {"security-awareness": COMPLETED})
SECURITY_LAPSE = COMPLETED + (365 + 14) * DAY
NEWCOMER_LAPSE = STARTED + 14 * DAY


def codes(facts: Facts, now: datetime = NOW) -> tuple[str, ...]:
    return decide(facts, POLICY, now).codes


def test_allow_has_one_ok_reason_and_the_policy_version():
    decision = decide(FACTS, POLICY, NOW)
    assert decision.allow is True
    assert decision.codes == ("ok",)
    assert decision.reasons[0].kind is Code.OK
    assert decision.policy_version == "v1"


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"person": None}, ("person_unknown",)),
        ({"person": replace(PERSON, active=False)}, ("person_inactive",)),
        ({"person": replace(PERSON, deleted=True)}, ("person_inactive",)),
        ({"person": None, "ambiguous": ("id-a", "id-b")}, ("person_ambiguous",)),
        ({"resource": "wiki", "resource_known": False}, ("resource_unknown",)),
        ({"grant": None}, ("no_grant",)),
        ({"grant": "revoked", "grant_reason": "review_revoked:2024-q1"}, ("grant_revoked",)),
        ({"grant": "suspended", "grant_reason": "training_lapsed:security-awareness"}, ("grant_suspended",)),
        ({"completions": {}}, ("training_missing:security-awareness",)),
        ({"completions": {"security-awareness": COMPLETED - 400 * DAY}}, ("training_lapsed:security-awareness",)),
        ({"reviews": (ReviewItem("2024-q1", NOW - DAY),)}, ("review_missed:2024-q1",)),
        ({"reviews": (ReviewItem("2024-q2", NOW + DAY, "revoke"),)}, ("review_revoked:2024-q2",)),
    ],
)
def test_each_deny_reason(changes, expected):
    decision = decide(replace(FACTS, **changes), POLICY, NOW)
    assert decision.allow is False
    assert decision.codes == expected
    assert all(r.text for r in decision.reasons)


def test_grant_reason_is_in_the_text():
    facts = replace(FACTS, grant="suspended", grant_reason="training_lapsed:security-awareness")
    (reason,) = decide(facts, POLICY, NOW).reasons
    assert "training_lapsed:security-awareness" in reason.text


def test_unavailable_fails_closed():
    decision = unavailable("v1")
    assert decision == Decision(False, (decision.reasons[0],), "v1")
    assert decision.codes == ("unavailable",)
    assert decision.reasons[0].kind is Code.UNAVAILABLE


@pytest.mark.parametrize(
    "completions, lapse, code",
    [
        ({"security-awareness": COMPLETED}, SECURITY_LAPSE, "training_lapsed:security-awareness"),
        ({}, NEWCOMER_LAPSE, "training_missing:security-awareness"),
    ],
)
def test_training_boundary_is_exact(completions, lapse, code):
    facts = replace(FACTS, completions=completions)
    assert lapses_at(SECURITY, completions.get("security-awareness"), STARTED) == lapse
    assert codes(facts, lapse - SECOND) == ("ok",)
    assert codes(facts, lapse) == (code,)
    assert codes(facts, lapse + SECOND) == (code,)


def test_review_deadline_is_exact():
    due = datetime(2024, 4, 15, 17, 0, tzinfo=UTC)
    facts = replace(FACTS, reviews=(ReviewItem("2024-q1", due),))
    assert codes(facts, due - SECOND) == ("ok",)
    assert codes(facts, due) == ("review_missed:2024-q1",)
    assert codes(facts, due + SECOND) == ("review_missed:2024-q1",)


def test_an_approved_item_past_its_deadline_does_not_deny():
    assert codes(replace(FACTS, reviews=(ReviewItem("2024-q1", NOW - DAY, "approve"),))) == ("ok",)


def test_a_revoke_denies_before_the_deadline():
    assert codes(replace(FACTS, reviews=(ReviewItem("2024-q1", NOW + 30 * DAY, "revoke"),))) == (
        "review_revoked:2024-q1",
    )


def test_every_reason_at_once_in_a_stable_order():
    facts = replace(
        FACTS,
        person=Person(active=False, deleted=False, started_at=STARTED, department="hr"),
        grant="suspended",
        completions={"security-awareness": COMPLETED - 400 * DAY},
        reviews=(ReviewItem("2024-q2", NOW - DAY), ReviewItem("2024-q1", NOW - 60 * DAY, "revoke")),
    )
    assert codes(facts) == (
        "person_inactive",
        "grant_suspended",
        "training_lapsed:security-awareness",
        "training_missing:privacy",
        "review_revoked:2024-q1",
        "review_missed:2024-q2",
    )


def test_unknown_person_and_resource_stand_alone():
    facts = replace(FACTS, person=None, resource="wiki", resource_known=False, grant=None, completions={})
    assert codes(facts) == ("person_unknown", "resource_unknown")


def test_an_ambiguous_reference_stands_alone_and_says_how_many_people_it_names():
    facts = replace(FACTS, person=None, ambiguous=("id-b", "id-a", "id-c"))
    (reason,) = decide(facts, POLICY, NOW).reasons
    assert reason.kind is Code.PERSON_AMBIGUOUS and "3 different people" in reason.text
    both = replace(facts, resource="wiki", resource_known=False)
    assert codes(both) == ("person_ambiguous", "resource_unknown")


def test_review_order_does_not_change_the_decision():
    items = (ReviewItem("b", NOW - DAY), ReviewItem("a", NOW - DAY), ReviewItem("c", NOW - 2 * DAY, "revoke"))
    first = decide(replace(FACTS, reviews=items), POLICY, NOW)
    assert first == decide(replace(FACTS, reviews=items[::-1]), POLICY, NOW)
    assert first.codes == ("review_revoked:c", "review_missed:a", "review_missed:b")


def test_one_instant_in_two_offsets_reads_the_same():
    local = (NOW - DAY).astimezone(timezone(timedelta(hours=-5)))
    items = (ReviewItem("2024-q1", NOW - DAY), ReviewItem("2024-q1", local))
    first = decide(replace(FACTS, reviews=items), POLICY, NOW)
    assert first == decide(replace(FACTS, reviews=items[::-1]), POLICY, NOW)
    assert "2024-05-31T12:00:00+00:00" in first.reasons[0].text


def test_a_repeated_reason_is_reported_once():
    items = (ReviewItem("2024-q1", NOW - DAY), ReviewItem("2024-q1", NOW - 2 * DAY))
    assert codes(replace(FACTS, reviews=items)) == ("review_missed:2024-q1",)


def test_courses_that_do_not_gate_the_resource_are_ignored():
    # secure-coding gates only git; this eng person never did it, and the vpn is still allowed.
    assert codes(FACTS) == ("ok",)
    assert codes(replace(FACTS, resource="git")) == ("training_missing:secure-coding",)


def test_courses_for_other_departments_are_ignored():
    # privacy gates every resource ("*") but applies only to hr.
    assert codes(FACTS) == ("ok",)
    assert codes(replace(FACTS, person=replace(PERSON, department=None))) == ("ok",)
    hr = replace(FACTS, person=replace(PERSON, department="hr"))
    assert codes(hr) == ("training_missing:privacy",)
    assert codes(replace(hr, completions={**FACTS.completions, "privacy": NOW - DAY})) == ("ok",)


def test_completions_of_courses_not_in_the_policy_do_not_matter():
    assert codes(replace(FACTS, completions={**FACTS.completions, "fire-safety": NOW - 5000 * DAY})) == ("ok",)


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="now"):
        decide(FACTS, POLICY, datetime(2024, 6, 1, 12, 0))


@pytest.mark.parametrize(
    "build",
    [
        lambda: replace(FACTS, grant="paused"),
        lambda: replace(FACTS, completions={"security-awareness": datetime(2024, 1, 1)}),
        lambda: ReviewItem("q1", NOW, "maybe"),
        lambda: ReviewItem("q1", datetime(2024, 1, 1)),
        lambda: Person(True, False, datetime(2024, 1, 1)),
        lambda: replace(FACTS, ambiguous=("id-a", "id-b")),  # a person and an ambiguity at once
        lambda: replace(FACTS, person=None, ambiguous=("id-a",)),  # one person is not ambiguous
        lambda: replace(FACTS, person=None, ambiguous=("id-a", "id-a")),
    ],
)
def test_malformed_facts_are_refused(build):
    with pytest.raises(ValueError):
        build()


def test_facts_do_not_follow_the_callers_dict():
    completions = {"security-awareness": COMPLETED}
    facts = replace(FACTS, completions=completions)
    completions.clear()
    assert codes(facts) == ("ok",)


@pytest.mark.parametrize(
    "allow, reasons",
    [(True, ()), (False, ()), (True, (Reason("no_grant", "x"),)), (False, (Reason("ok", "x"),))],
)
def test_a_decision_must_be_consistent(allow, reasons):
    with pytest.raises(ValueError):
        Decision(allow, reasons, "v1")


def test_reason_kind_drops_the_subject():
    assert Reason("training_lapsed:security-awareness", "x").kind is Code.TRAINING_LAPSED
    assert Reason.of(Code.REVIEW_MISSED, "x", "2024-q1").code == "review_missed:2024-q1"


# Properties over arbitrary facts.

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9, minutes=30))])
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=ZONES)
people = st.none() | st.builds(
    Person, active=st.booleans(), deleted=st.booleans(), started_at=moments,
    department=st.sampled_from([None, "eng", "hr"]),
)
reviews = st.builds(ReviewItem, campaign=st.sampled_from(["2024-q1", "2024-q2"]), due_at=moments,
                    decision=st.sampled_from(REVIEW_DECISIONS))
ids = st.lists(st.sampled_from(["id-a", "id-b", "id-c"]), min_size=2, max_size=3, unique=True).map(tuple)
plain_facts = st.builds(
    Facts,
    person=people,
    resource=st.sampled_from(["vpn", "git", "wiki"]),
    resource_known=st.booleans(),
    grant=st.sampled_from(GRANT_STATES),
    grant_reason=st.none() | st.text(max_size=20),
    completions=st.dictionaries(st.sampled_from(["security-awareness", "privacy", "secure-coding"]), moments),
    reviews=st.lists(reviews, max_size=4).map(tuple),
)
# Some references name several people: no person then, only the ids.
facts_st = plain_facts | st.builds(lambda f, a: replace(f, person=None, ambiguous=a), plain_facts, ids)
BREAKS = [
    lambda f: replace(f, person=None, ambiguous=("id-a", "id-b")),
    lambda f: replace(f, person=None),
    lambda f: replace(f, person=f.person and replace(f.person, active=False)),
    lambda f: replace(f, person=f.person and replace(f.person, deleted=True)),
    lambda f: replace(f, resource_known=False),
    lambda f: replace(f, grant=None),
    lambda f: replace(f, grant="suspended"),
    lambda f: replace(f, grant="revoked"),
]
examples = settings(max_examples=300, database=None, deadline=None)


@examples
@given(facts_st, st.sampled_from(BREAKS), moments)
def test_no_allow_without_an_active_person_a_known_resource_and_an_active_grant(facts, break_, now):
    facts = break_(facts)
    assert decide(facts, POLICY, now).allow is False


@examples
@given(facts_st, moments)
def test_an_allow_implies_every_precondition(facts, now):
    decision = decide(facts, POLICY, now)
    if decision.allow:
        person = facts.person
        assert person is not None and person.active and not person.deleted and not facts.ambiguous
        assert facts.resource_known and facts.grant == "active"
        for course in POLICY.requirements_for(facts.resource):
            if course.applies_to_department(person.department):
                assert lapses_at(course, facts.completions.get(course.course), person.started_at) > now


@examples
@given(facts_st, moments, st.randoms(use_true_random=False))
def test_decide_is_deterministic_and_ignores_load_order(facts, now, rng):
    decision = decide(facts, POLICY, now)
    assert decide(facts, POLICY, now) == decision
    shuffled = list(facts.reviews)
    rng.shuffle(shuffled)
    completions = dict(reversed(list(facts.completions.items())))
    assert decide(replace(facts, reviews=tuple(shuffled), completions=completions), POLICY, now) == decision
    assert len(set(decision.codes)) == len(decision.codes)


# Texts and messages the mutation run (mutmut over policies/) found unchecked: a gateway logs the reason texts
# and a person reads them, so their words and instants matter, not only their codes.


def texts(facts: Facts, now: datetime = NOW) -> tuple[str, ...]:
    return tuple(r.text for r in decide(facts, POLICY, now).reasons)


def test_a_deny_carries_the_policy_version_and_an_allow_says_why():
    assert decide(replace(FACTS, grant=None), POLICY, NOW).policy_version == "v1"
    assert texts(FACTS) == ("access to vpn is granted and every requirement holds",)


def test_unavailable_says_why_by_default_and_takes_another_text():
    from policies.access import UNAVAILABLE_TEXT

    assert unavailable("v1").reasons == (Reason("unavailable", UNAVAILABLE_TEXT),)
    assert unavailable("v2", "the journal is broken").reasons[0].text == "the journal is broken"


@pytest.mark.parametrize(
    "changes, text",
    [
        ({"person": None}, "no such person"),
        ({"person": replace(PERSON, active=False)}, "the person is inactive"),
        ({"person": replace(PERSON, deleted=True)}, "the person is deleted"),
        ({"person": replace(PERSON, active=False, deleted=True)}, "the person is deleted"),
        ({"grant": "revoked"}, "access to vpn was revoked"),
        ({"grant": "revoked", "grant_reason": ""}, "access to vpn was revoked"),
        ({"grant": "suspended", "grant_reason": "security incident"}, "access to vpn is suspended (security incident)"),
        ({"grant": None}, "no grant for vpn"),
        ({"completions": {}}, "Security awareness was never completed; it was due by 2024-01-15T09:00:00+00:00"),
        ({"completions": {"security-awareness": COMPLETED - 400 * DAY}},
         "Security awareness lapsed at 2023-12-15T14:30:00+00:00"),
        ({"reviews": (ReviewItem("2024-q1", NOW - DAY),)},
         "review 2024-q1 was due at 2024-05-31T12:00:00+00:00 and not approved"),
        ({"reviews": (ReviewItem("2024-q2", NOW + DAY, "revoke"),)}, "the manager revoked access in review 2024-q2"),
    ],
)
def test_each_reason_text(changes, text):
    assert texts(replace(FACTS, **changes))[0] == text


@pytest.fixture
def local_time_is_not_utc(monkeypatch):
    """The process's local zone set to one far from UTC, as on a server configured for its office."""
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_reason_texts_are_in_utc_whatever_the_servers_zone(local_time_is_not_utc):
    assert datetime(2024, 1, 1, tzinfo=UTC).astimezone().utcoffset() != timedelta(0)  # the fixture took effect
    facts = replace(FACTS, completions={"security-awareness": COMPLETED - 400 * DAY})
    assert texts(facts) == ("Security awareness lapsed at 2023-12-15T14:30:00+00:00",)


def test_an_undecided_and_a_decided_item_of_one_campaign_and_deadline():
    items = (ReviewItem("2024-q1", NOW - DAY, "revoke"), ReviewItem("2024-q1", NOW - DAY))
    assert codes(replace(FACTS, reviews=items)) == ("review_missed:2024-q1", "review_revoked:2024-q1")
    assert codes(replace(FACTS, reviews=items[::-1])) == ("review_missed:2024-q1", "review_revoked:2024-q1")


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: decide(FACTS, POLICY, datetime(2024, 6, 1)), "now must be a timezone-aware datetime"),
        (lambda: Person(True, False, datetime(2024, 1, 1)), "started_at must be a timezone-aware datetime"),
        (lambda: ReviewItem("q1", datetime(2024, 1, 1)), "due_at must be a timezone-aware datetime"),
        (
            lambda: ReviewItem("q1", NOW, "maybe"),
            "review decision must be one of (None, 'approve', 'revoke'), got 'maybe'",
        ),
        (
            lambda: replace(FACTS, grant="paused"),
            "grant must be one of (None, 'active', 'suspended', 'revoked'), got 'paused'",
        ),
        (
            lambda: replace(FACTS, completions={"privacy": datetime(2024, 1, 1)}),
            "completions['privacy'] must be a timezone-aware datetime",
        ),
        (lambda: Decision(True, (), "v1"), "an allow has exactly one 'ok' reason; a deny has one or more deny reasons"),
    ],
)
def test_malformed_values_say_what_is_wrong(build, message):
    with pytest.raises(ValueError) as caught:
        build()
    assert str(caught.value).startswith(message)


def test_facts_do_not_follow_the_callers_list_of_reviews():
    reviews = [ReviewItem("2024-q1", NOW - DAY)]
    facts = Facts(PERSON, "vpn", True, "active", None, {"security-awareness": COMPLETED}, reviews)
    reviews.clear()
    assert isinstance(facts.reviews, tuple) and hash(facts.reviews)
    assert codes(facts) == ("review_missed:2024-q1",)


@examples
@given(plain_facts, ids, moments)
def test_an_ambiguous_reference_always_denies_as_ambiguous_never_as_unknown(facts, ambiguous, now):
    decision = decide(replace(facts, person=None, ambiguous=ambiguous), POLICY, now)
    assert decision.allow is False
    assert decision.codes[0] == "person_ambiguous" and "person_unknown" not in decision.codes
