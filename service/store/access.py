"""The facts an access decision needs, each set loaded by one query: for one check, or for a resource's members."""

import dataclasses
from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg import sql

from policies import Facts, Person, ReviewItem

from . import people

# -- load_facts -- the person asked about (userName, else primary email, else
# employee number; deleted people are not found), the resource, the grant, the
# latest completion of each course and the open review items, in one round trip.
_LOAD_FACTS = sql.SQL("""
WITH person AS ({match}),
resource AS (SELECT r.id FROM resources r WHERE r.key = %(resource)s),
-- open_review_items: the reviews issue fills this in (same columns); until then nobody has any.
open_review_items AS (
    SELECT NULL::uuid AS person_id, NULL::uuid AS resource_id, NULL::text AS campaign,
           NULL::timestamptz AS due_at, NULL::text AS decision
    WHERE false
)
SELECT p.id::text, p.active, p.started_at, p.department, r.id IS NOT NULL, g.state, g.reason,
       c.courses, c.completed, o.campaigns, o.due, o.decisions
FROM (VALUES (1)) AS one (x)
LEFT JOIN person p ON true
LEFT JOIN resource r ON true
LEFT JOIN grants g ON g.person_id = p.id AND g.resource_id = r.id
LEFT JOIN LATERAL (
    SELECT array_agg(t.course) AS courses, array_agg(t.completed_at) AS completed
    FROM (SELECT course, max(completed_at) AS completed_at FROM training_completions
          WHERE person_id = p.id GROUP BY course) t
) c ON true
LEFT JOIN LATERAL (
    SELECT array_agg(i.campaign) AS campaigns, array_agg(i.due_at) AS due, array_agg(i.decision) AS decisions
    FROM open_review_items i WHERE i.person_id = p.id AND i.resource_id = r.id
) o ON true
""").format(match=people.matching(sql.Placeholder("user")))

# -- load_members -- the same facts for every (not deleted) person with a grant on the resource, in bulk.
_LOAD_MEMBERS = """
WITH resource AS (SELECT r.id FROM resources r WHERE r.key = %(resource)s),
-- open_review_items: as in load_facts.
open_review_items AS (
    SELECT NULL::uuid AS person_id, NULL::uuid AS resource_id, NULL::text AS campaign,
           NULL::timestamptz AS due_at, NULL::text AS decision
    WHERE false
),
latest AS (
    SELECT t.person_id, t.course, max(t.completed_at) AS completed_at
    FROM training_completions t JOIN grants g ON g.person_id = t.person_id
    WHERE g.resource_id = (SELECT id FROM resource)
    GROUP BY t.person_id, t.course
),
completions AS (
    SELECT person_id, array_agg(course) AS courses, array_agg(completed_at) AS completed
    FROM latest GROUP BY person_id
),
reviews AS (
    SELECT person_id, array_agg(campaign) AS campaigns, array_agg(due_at) AS due,
           array_agg(decision) AS decisions
    FROM open_review_items WHERE resource_id = (SELECT id FROM resource) GROUP BY person_id
)
SELECT p.id::text, p.user_name, p.active, p.started_at, p.department, g.state, g.reason,
       c.courses, c.completed, o.campaigns, o.due, o.decisions
FROM grants g
JOIN people p ON p.id = g.person_id AND p.deleted_at IS NULL
LEFT JOIN completions c ON c.person_id = p.id
LEFT JOIN reviews o ON o.person_id = p.id
WHERE g.resource_id = (SELECT id FROM resource)
"""

_RESOURCE_EXISTS = "SELECT EXISTS (SELECT 1 FROM resources WHERE key = %s)"


@dataclasses.dataclass(frozen=True)
class Loaded:
    """The facts for one (person, resource), and the person's id for the journal (None: no such person)."""

    person_id: str | None
    facts: Facts


@dataclasses.dataclass(frozen=True)
class Member:
    """A person holding a grant on a resource, with the facts to decide whether they may use it now."""

    person_id: str
    user_name: str
    facts: Facts


def load_facts(conn: psycopg.Connection, user: str, resource: str) -> Loaded:
    """Everything decide() needs about `user` and `resource`, in one query."""
    person_id, *person, known, grant, reason, courses, completed, campaigns, due, decisions = conn.execute(
        _LOAD_FACTS, {"user": user, "resource": resource}).fetchone()
    facts = Facts(person=None if person_id is None else _person(*person), resource=resource,
                  resource_known=known, grant=grant, grant_reason=reason,
                  completions=_completions(courses, completed), reviews=_review_items(campaigns, due, decisions))
    return Loaded(person_id, facts)


def resource_exists(conn: psycopg.Connection, resource: str) -> bool:
    """Whether a resource with this key exists."""
    return conn.execute(_RESOURCE_EXISTS, (resource,)).fetchone()[0]


def load_members(conn: psycopg.Connection, resource: str) -> list[Member]:
    """The facts for every person with a grant on `resource` (any state), in one query."""
    members = []
    for row in conn.execute(_LOAD_MEMBERS, {"resource": resource}):
        person_id, user_name, *person, grant, reason, courses, completed, campaigns, due, decisions = row
        facts = Facts(person=_person(*person), resource=resource, resource_known=True, grant=grant,
                      grant_reason=reason, completions=_completions(courses, completed),
                      reviews=_review_items(campaigns, due, decisions))
        members.append(Member(person_id, user_name, facts))
    return members


def _person(active: bool, started_at: datetime, department: str | None) -> Person:
    # Deleted people are never loaded (the queries skip them), so `deleted` is always False here.
    return Person(active=active, deleted=False, started_at=started_at, department=department)


def _completions(courses: Sequence[str] | None, completed: Sequence[datetime] | None) -> dict[str, datetime]:
    return dict(zip(courses or (), completed or (), strict=True))


def _review_items(campaigns, due, decisions) -> tuple[ReviewItem, ...]:
    return tuple(ReviewItem(c, d, x) for c, d, x in zip(campaigns or (), due or (), decisions or (), strict=True))
