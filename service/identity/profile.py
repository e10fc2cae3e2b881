"""What the people pages read about people: search, a person's sources, manager, reports, groups; counts by source.

Read-only queries; the pages (service/people/pages.py) and the console's dashboard render them.
"""

import dataclasses
from datetime import datetime

import psycopg

SEARCH_LIMIT = 50


@dataclasses.dataclass(frozen=True)
class Found:
    """One search hit."""

    id: str
    user_name: str
    name: str
    email: str | None
    employee_number: str | None
    department: str | None
    active: bool
    deleted: bool


@dataclasses.dataclass(frozen=True)
class Membership:
    group_id: str
    name: str
    source: str
    added_at: datetime


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % _ and \\ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# -- search_people -- name (any of the name fields), any e-mail, employee number or department contains q.
_SEARCH = """
SELECT p.id::text, p.user_name, coalesce(p.display_name, nullif(concat_ws(' ', p.given_name, p.family_name), ''),
       p.user_name), p.primary_email, p.employee_number, p.department, p.active, p.deleted_at IS NOT NULL
FROM people p
WHERE %(q)s = '' OR p.user_name ILIKE %(like)s OR p.display_name ILIKE %(like)s
   OR concat_ws(' ', p.given_name, p.family_name) ILIKE %(like)s OR p.employee_number ILIKE %(like)s
   OR p.department ILIKE %(like)s
   OR EXISTS (SELECT 1 FROM jsonb_array_elements(p.emails) e WHERE e->>'value' ILIKE %(like)s)
   OR p.primary_email ILIKE %(like)s
ORDER BY p.deleted_at IS NOT NULL, lower(coalesce(p.display_name, p.family_name, p.user_name)), p.id
LIMIT %(limit)s
"""


def search(conn: psycopg.Connection, q: str, *, limit: int = SEARCH_LIMIT) -> list[Found]:
    """People whose name, e-mail, employee number or department contains q (any case); live people first."""
    q = q.strip()
    rows = conn.execute(_SEARCH, {"q": q, "like": _like(q), "limit": limit}).fetchall()
    return [Found(*r) for r in rows]


def groups_of(conn: psycopg.Connection, person_id: str) -> list[Membership]:
    return [Membership(*r) for r in conn.execute(
        "SELECT g.id::text, g.display_name, g.source, m.added_at FROM group_members m JOIN groups g "
        "ON g.id = m.group_id WHERE m.person_id = %s ORDER BY lower(g.display_name)", (person_id,))]


def reports_of(conn: psycopg.Connection, person_id: str) -> list[tuple[str, str]]:
    """(id, name) of the live people this person manages."""
    return conn.execute("SELECT id::text, coalesce(display_name, user_name) FROM people WHERE manager_id = %s "
                        "AND deleted_at IS NULL ORDER BY lower(coalesce(display_name, user_name))",
                        (person_id,)).fetchall()


def name_of(conn: psycopg.Connection, person_id: str | None) -> str | None:
    if person_id is None:
        return None
    row = conn.execute("SELECT coalesce(display_name, user_name) FROM people WHERE id = %s", (person_id,)).fetchone()
    return row[0] if row else None


# -- people_by_source -- live people by the sources that know them (an externalId per source), e.g. "ldap + scim".
_BY_SOURCE = """
SELECT coalesce(s.sources, p.source) AS sources, count(*), count(*) FILTER (WHERE p.active)
FROM people p
LEFT JOIN LATERAL (
    SELECT string_agg(DISTINCT split_part(x.source, ':', 1), ' + ' ORDER BY split_part(x.source, ':', 1)) AS sources
    FROM person_external_ids x WHERE x.person_id = p.id
) s ON true
WHERE p.deleted_at IS NULL
GROUP BY 1 ORDER BY 2 DESC, 1
"""


def people_by_source(conn: psycopg.Connection) -> list[tuple[str, int, int]]:
    """(sources, people, of them active) for live people."""
    return conn.execute(_BY_SOURCE).fetchall()
