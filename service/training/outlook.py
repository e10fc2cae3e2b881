"""Who is about to lose access for training: each person's courses that lapse within the next days.

The same facts and the same rule as the sweep (store.load_standing, policies.training_status), read only.
"""

import dataclasses
from datetime import datetime, timedelta

import psycopg

from policies import Policy, training_status
from service.training import store


@dataclasses.dataclass(frozen=True)
class Lapsing:
    person_id: str
    name: str
    course: str
    course_name: str
    completed_at: datetime | None
    lapses_at: datetime
    resources: tuple[str, ...]  # the active grants the lapse will suspend


def lapsing_within(conn: psycopg.Connection, policy: Policy, now: datetime, *, days: int = 30) -> list[Lapsing]:
    """Active people whose required course lapses after now and at most `days` days from now, soonest first."""
    horizon = now + timedelta(days=days)
    found = []
    for standing in store.load_standing(conn):
        active = [g.resource for g in standing.grants if g.state == "active"]
        requirements = [t for t in policy.training if any(t.gates_resource(k) for k in active)]
        statuses = training_status(standing.completions, requirements, now, started_at=standing.started_at,
                                   department=standing.department)
        names = {t.course: t for t in requirements}
        for s in statuses:
            if now < s.lapses_at <= horizon:
                gated = tuple(k for k in active if names[s.course].gates_resource(k))
                found.append(Lapsing(standing.person_id, standing.name, s.course, names[s.course].name,
                                     s.completed_at, s.lapses_at, gated))
    return sorted(found, key=lambda x: (x.lapses_at, x.name, x.course))


@dataclasses.dataclass(frozen=True)
class Compliance:
    """Where the active people a course applies to stand on it now."""

    course: str
    course_name: str
    counts: dict[str, int]  # ok, due_soon, lapsed, missing
    behind: tuple[tuple[str, str, str, datetime], ...]  # (person id, name, state, lapses_at) of those lapsed or missing

    @property
    def people(self) -> int:
        return sum(self.counts.values())

    @property
    def current(self) -> int:
        """Those whose training lets them in (ok or due soon)."""
        return self.counts["ok"] + self.counts["due_soon"]


def compliance(conn: psycopg.Connection, policy: Policy, now: datetime) -> list[Compliance]:
    """Per course: of the active people holding access it gates (or held, until it lapsed), how many are current,
    due soon, lapsed or missing: the people the sweep looks at, by the sweep's rule."""
    tally = {t.course: {"ok": 0, "due_soon": 0, "lapsed": 0, "missing": 0} for t in policy.training}
    behind: dict[str, list] = {t.course: [] for t in policy.training}
    gated: dict[tuple[str, ...], list] = {}  # the requirements of a set of held resources, worked out once
    for person in store.load_holdings(conn):
        requirements = gated.get(person.held)
        if requirements is None:
            requirements = gated[person.held] = [t for t in policy.training
                                                 if any(t.gates_resource(k) for k in person.held)]
        if not requirements:
            continue
        for s in training_status(person.completions, requirements, now, started_at=person.started_at,
                                 department=person.department):
            tally[s.course][s.state] += 1
            if s.denies:
                behind[s.course].append((person.person_id, person.name, s.state, s.lapses_at))
    return [Compliance(t.course, t.name, tally[t.course], tuple(sorted(behind[t.course], key=lambda b: (b[3], b[0]))))
            for t in policy.training]
