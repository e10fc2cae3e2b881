"""The facts an access decision needs, each set loaded by one query: for one check, or for a resource's members."""

import dataclasses
import functools
from collections.abc import Collection, Sequence
from datetime import datetime

import psycopg
from psycopg import sql

from policies import Facts, Person, ReviewItem
from service.db.query import one, scalar
from service.identity import people

# -- load_facts -- the person the reference names (store.people.matching, through the identifiers a gateway may
# use), the resource, the grant, the latest completion of each course and the open review items, in one round trip.
_LOAD_FACTS = """
WITH person AS ({match}),
resource AS (SELECT r.id FROM resources r WHERE r.key = %(resource)s),
-- open_review_items: the person's review items on this grant as it is now (its epoch: a grant revoked and
-- granted again is a new grant, which no earlier item touches), with the campaign's counts for the guard.
open_review_items AS ({items} AND i.person_id = (SELECT id FROM person) AND i.resource_id = (SELECT id FROM resource))
SELECT p.id::text, p.active, p.deleted, p.started_at, p.department, p.ambiguous, r.id IS NOT NULL, g.state, g.reason,
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
    SELECT array_agg(ARRAY[i.campaign, i.decision, i.state, i.open_items::text, i.total_items::text,
                           i.guard_share::text]) AS campaigns, array_agg(i.due_at) AS due, NULL AS decisions
    FROM open_review_items i WHERE i.person_id = p.id AND i.resource_id = r.id
) o ON true
"""


# The items of every campaign on each grant's current epoch; the callers narrow it to a person or a resource.
_REVIEW_ITEMS = """
SELECT i.person_id, i.resource_id, c.key AS campaign, c.due_at, i.decision, c.state, c.items_open AS open_items,
       c.items_total AS total_items, c.guard_share
FROM review_items i
JOIN review_campaigns c ON c.id = i.campaign_id
JOIN grants g ON g.id = i.grant_id AND g.epoch = i.grant_epoch
WHERE true"""


@functools.lru_cache(maxsize=16)
def _load_facts(identifiers: frozenset[str]) -> sql.Composed:
    return sql.SQL(_LOAD_FACTS).format(match=people.matching(sql.Placeholder("user"), identifiers),
                                       items=sql.SQL(_REVIEW_ITEMS))


# -- load_members -- the same facts for every (not deleted) person with a grant on the resource, in bulk.
_LOAD_MEMBERS = """
WITH resource AS (SELECT r.id FROM resources r WHERE r.key = %(resource)s),
-- open_review_items: as in load_facts.
open_review_items AS ({items} AND i.resource_id = (SELECT id FROM resource)),
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
    SELECT person_id, array_agg(ARRAY[campaign, decision, state, open_items::text, total_items::text,
                                      guard_share::text]) AS campaigns, array_agg(due_at) AS due, NULL AS decisions
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



@functools.cache
def _load_members() -> sql.Composed:
    return sql.SQL(_LOAD_MEMBERS).format(items=sql.SQL(_REVIEW_ITEMS))


_RESOURCE_EXISTS = "SELECT EXISTS (SELECT 1 FROM resources WHERE key = %s)"


@dataclasses.dataclass(frozen=True)
class Loaded:
    """The facts for one (person, resource), and the person's id for the journal (None: no one person named)."""

    person_id: str | None
    facts: Facts


@dataclasses.dataclass(frozen=True)
class Member:
    """A person holding a grant on a resource, with the facts to decide whether they may use it now."""

    person_id: str
    user_name: str
    facts: Facts


def load_facts(conn: psycopg.Connection, user: str, resource: str, *, identifiers: Collection[str]) -> Loaded:
    """Everything decide() needs about `user` (found through `identifiers`) and `resource`, in one query."""
    row = one(conn, _load_facts(frozenset(identifiers)), {"user": user, "resource": resource})
    person_id, active, deleted, started_at, department, ambiguous, known, grant, reason, *rest = row
    courses, completed, campaigns, due, decisions = rest
    person = None if person_id is None else _person(active, started_at, department, deleted=deleted)
    facts = Facts(person=person, resource=resource, resource_known=known, grant=grant, grant_reason=reason,
                  completions=_completions(courses, completed), reviews=_review_items(campaigns, due, decisions),
                  ambiguous=tuple(ambiguous or ()))
    return Loaded(person_id, facts)


def resource_exists(conn: psycopg.Connection, resource: str) -> bool:
    """Whether a resource with this key exists."""
    return scalar(conn, _RESOURCE_EXISTS, (resource,))


def load_members(conn: psycopg.Connection, resource: str) -> list[Member]:
    """The facts for every person with a grant on `resource` (any state), in one query."""
    members = []
    for row in conn.execute(_load_members(), {"resource": resource}):
        person_id, user_name, *person, grant, reason, courses, completed, campaigns, due, decisions = row
        facts = Facts(person=_person(*person), resource=resource, resource_known=True, grant=grant,
                      grant_reason=reason, completions=_completions(courses, completed),
                      reviews=_review_items(campaigns, due, decisions))
        members.append(Member(person_id, user_name, facts))
    return members


def _person(active: bool, started_at: datetime, department: str | None, *, deleted: bool = False) -> Person:
    # Member lists skip deleted people; a check loads one when a reference names them by userName.
    return Person(active=active, deleted=deleted, started_at=started_at, department=department)


def _completions(courses: Sequence[str] | None, completed: Sequence[datetime] | None) -> dict[str, datetime]:
    return dict(zip(courses or (), completed or (), strict=True))


def _review_items(campaigns, due, _decisions) -> tuple[ReviewItem, ...]:
    # Each campaign row: [key, decision, state, open, total, guard share] (one array: one type, text).
    return tuple(ReviewItem(key, at, decision, state, int(n_open), int(total), float(share))
                 for (key, decision, state, n_open, total, share), at in zip(campaigns or (), due or (), strict=True))
