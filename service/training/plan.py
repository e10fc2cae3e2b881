"""Training's decisions, with no I/O: a reported completion checked, and what to do about one person's standing.

The sweep (sweep.py) and the completions API feed these functions what the store read; import-linter keeps this
module pure, as policies/ is.
"""

import dataclasses
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta

from policies import Policy, reminders_due, training_status

ACCEPTED, DUPLICATE, UNKNOWN_PERSON, INVALID = "accepted", "duplicate", "unknown_person", "invalid"
AMBIGUOUS_PERSON = "ambiguous_person"
STATUSES = (ACCEPTED, DUPLICATE, UNKNOWN_PERSON, AMBIGUOUS_PERSON, INVALID)  # the order results are counted in
NOT_IMPORTED = (UNKNOWN_PERSON, AMBIGUOUS_PERSON, INVALID)
LAPSED_PREFIX = "training_lapsed:"
MAX_ITEMS = 1000
CLOCK_SKEW = timedelta(minutes=1)  # a sender's clock a little ahead of ours is not "the future"


@dataclasses.dataclass(frozen=True)
class Grant:
    """A grant the sweep may act on: active, or suspended for a training lapse."""

    id: str
    resource: str
    state: str
    reason: str | None


@dataclasses.dataclass(frozen=True)
class Standing:
    """One person's training facts and what the sweep already did about them."""

    person_id: str
    name: str
    email: str | None
    manager_email: str | None
    started_at: datetime
    department: str | None
    grants: tuple[Grant, ...]
    completions: Mapping[str, datetime]
    lapses: frozenset  # {(course, lapses_at)} recorded
    reminders: frozenset  # {(course, lapses_at, days_before)} queued


@dataclasses.dataclass(frozen=True)
class Completion:
    """One valid completion as reported: `person` is a userName, primary e-mail or employee number."""

    person: str
    course: str
    completed_at: datetime
    source: str
    source_id: str


@dataclasses.dataclass(frozen=True)
class Result:
    """What became of one reported completion."""

    index: int
    status: str
    detail: str


@dataclasses.dataclass(frozen=True)
class Lapse:
    """A lapse (or a course never completed past its grace) not recorded yet."""

    course: str
    state: str
    lapses_at: datetime


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to write for one person; empty when nothing changes."""

    restore: tuple[Grant, ...] = ()
    lapses: tuple[Lapse, ...] = ()
    suspend: tuple[tuple[Grant, str], ...] = ()  # (grant, course)
    reminders: tuple[tuple[str, datetime, tuple[int, ...]], ...] = ()  # (course, lapses_at, days)

    def __bool__(self) -> bool:
        return bool(self.restore or self.lapses or self.suspend or self.reminders)


def parse_completion(raw, courses: Collection[str], now: datetime) -> Completion:
    """A reported completion checked field by field; ValueError says what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError("expected an object")
    person, course = _text(raw, "person", 256), _text(raw, "course", 128)
    if course not in courses:
        raise ValueError(f"unknown course {course!r}; the policy's courses: {', '.join(sorted(courses))}")
    completed_at = _instant(raw.get("completed_at"))
    if completed_at > now + CLOCK_SKEW:
        raise ValueError(f"completed_at {completed_at.isoformat()} is in the future")
    return Completion(person=person, course=course, completed_at=completed_at,
                      source=_text(raw, "source", 64), source_id=_text(raw, "source_id", 256))


def _text(raw: Mapping, name: str, limit: int) -> str:
    value = raw.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and name == "source_id":
        value = str(value)  # learning systems often number their records
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is required (a non-empty string)")
    if len(value) > limit or not value.isprintable():
        raise ValueError(f"{name} must be at most {limit} printable characters")
    return value.strip()


def _instant(value) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("completed_at is required (ISO 8601 with an offset)")
    if not value.isprintable():  # CPython 3.11 fromisoformat accepts a NUL in the time ("...:00\x00+00:00")
        raise ValueError("completed_at must be printable characters")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"completed_at {value!r} is not an ISO 8601 date and time") from None
    if moment.utcoffset() is None:
        raise ValueError(f"completed_at {value!r} has no UTC offset (add Z or +hh:mm)")
    return moment


def plan(standing: Standing, policy: Policy, now: datetime) -> Plan:
    """Restore what a lapse suspended once compliant; record new lapses once; queue due reminders."""
    held = {g.resource for g in standing.grants}
    requirements = [t for t in policy.training if any(t.gates_resource(k) for k in held)]
    statuses = training_status(standing.completions, requirements, now, started_at=standing.started_at,
                               department=standing.department)
    denying = {s.course for s in statuses if s.denies}

    def blocked(resource: str) -> list[str]:
        return [t.course for t in policy.requirements_for(resource) if t.course in denying]

    restore = tuple(g for g in standing.grants if g.state == "suspended" and not blocked(g.resource))
    lapses = tuple(Lapse(s.course, s.state, s.lapses_at) for s in statuses
                   if s.denies and (s.course, s.lapses_at) not in standing.lapses)
    new = {lapse.course for lapse in lapses}
    suspend = tuple((g, next(c for c in blocked(g.resource) if c in new)) for g in standing.grants
                    if g.state == "active" and new.intersection(blocked(g.resource)))
    days_of = {t.course: t.reminder_days for t in requirements}
    reminders = []
    for s in statuses:
        sent = [d for c, at, d in standing.reminders if (c, at) == (s.course, s.lapses_at)]
        due = reminders_due(s, days_of[s.course], sent, now)
        if due:
            reminders.append((s.course, s.lapses_at, due))
    return Plan(restore, lapses, suspend, tuple(reminders))
