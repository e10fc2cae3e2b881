"""May this person use this resource now? Deny unless everything holds, with every reason."""

from datetime import UTC, datetime

from policies.model import Code, Decision, Facts, Person, Policy, Reason, ReviewItem, require_aware
from policies.reviews import missed
from policies.training import LAPSED, MISSING, training_status

UNAVAILABLE_TEXT = "the facts could not be read; access is denied until they can"


def decide(facts: Facts, policy: Policy, now: datetime) -> Decision:
    """Allow with one 'ok' reason only if nothing denies; otherwise deny with every reason."""
    require_aware(now, "now")
    reasons = _subject_reasons(facts)
    # With no such person or resource there is no grant, training or review to judge.
    if facts.person is not None and facts.resource_known:
        reasons += _grant_reasons(facts)
        reasons += _training_reasons(facts, facts.person, policy, now)
        reasons += _review_reasons(facts.reviews, now)
    if not reasons:
        ok = Reason.of(Code.OK, f"access to {facts.resource} is granted and every requirement holds")
        return Decision(True, (ok,), policy.version)
    return Decision(False, _unique(reasons), policy.version)


def unavailable(policy_version: str, text: str = UNAVAILABLE_TEXT) -> Decision:
    """The fail-closed answer when the facts cannot be loaded."""
    return Decision(False, (Reason.of(Code.UNAVAILABLE, text),), policy_version)


def _subject_reasons(facts: Facts) -> tuple[Reason, ...]:
    reasons = []
    person = facts.person
    if facts.ambiguous:
        text = f"the reference names {len(set(facts.ambiguous))} different people; none is picked"
        reasons.append(Reason.of(Code.PERSON_AMBIGUOUS, text))
    elif person is None:
        reasons.append(Reason.of(Code.PERSON_UNKNOWN, "no such person"))
    elif person.deleted or not person.active:
        state = "deleted" if person.deleted else "inactive"
        reasons.append(Reason.of(Code.PERSON_INACTIVE, f"the person is {state}"))
    if not facts.resource_known:
        reasons.append(Reason.of(Code.RESOURCE_UNKNOWN, f"no such resource: {facts.resource}"))
    return tuple(reasons)


def _grant_reasons(facts: Facts) -> tuple[Reason, ...]:
    why = f" ({facts.grant_reason})" if facts.grant_reason else ""
    if facts.grant is None:
        return (Reason.of(Code.NO_GRANT, f"no grant for {facts.resource}"),)
    if facts.grant == "revoked":
        return (Reason.of(Code.GRANT_REVOKED, f"access to {facts.resource} was revoked{why}"),)
    if facts.grant == "suspended":
        return (Reason.of(Code.GRANT_SUSPENDED, f"access to {facts.resource} is suspended{why}"),)
    return ()


def _training_reasons(facts: Facts, person: Person, policy: Policy, now: datetime) -> tuple[Reason, ...]:
    requirements = policy.requirements_for(facts.resource)
    names = {r.course: r.name for r in requirements}
    statuses = training_status(
        facts.completions, requirements, now, started_at=person.started_at, department=person.department
    )
    reasons = []
    for s in statuses:
        when = _utc(s.lapses_at)
        if s.state == LAPSED:
            text = f"{names[s.course]} lapsed at {when}"
            reasons.append(Reason.of(Code.TRAINING_LAPSED, text, s.course))
        elif s.state == MISSING:
            text = f"{names[s.course]} was never completed; it was due by {when}"
            reasons.append(Reason.of(Code.TRAINING_MISSING, text, s.course))
    return tuple(reasons)


def _review_reasons(items: tuple[ReviewItem, ...], now: datetime) -> tuple[Reason, ...]:
    reasons = []
    # Sorted, so the same items in any load order give the same reasons.
    for item in sorted(items, key=lambda i: (i.due_at, i.campaign, i.decision or "")):
        if item.decision == "revoke":
            text = f"the manager revoked access in review {item.campaign}"
            reasons.append(Reason.of(Code.REVIEW_REVOKED, text, item.campaign))
        elif missed(item, now):  # undecided at the due instant, unless the guard holds the campaign
            text = f"review {item.campaign} was due at {_utc(item.due_at)} and not approved"
            reasons.append(Reason.of(Code.REVIEW_MISSED, text, item.campaign))
    return tuple(reasons)


def _utc(moment: datetime) -> str:
    # Texts show UTC, so one instant given in two offsets reads the same.
    return moment.astimezone(UTC).isoformat()


def _unique(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    kept: dict[str, Reason] = {}
    for r in reasons:
        kept.setdefault(r.code, r)
    return tuple(kept.values())
