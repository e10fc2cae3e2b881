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
