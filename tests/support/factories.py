"""Seeding a test database as the owner, in plain SQL: people, grants, completions, and reading rows back.

Plain SQL on purpose: a test's preconditions must not depend on the code under test.
"""

from datetime import UTC, datetime, timedelta

import psycopg

COURSE = "security-awareness"
YEAR = timedelta(days=365)


def now() -> datetime:
    return datetime.now(UTC)


def rows(database, query: str, params=None) -> list[tuple]:
    """Rows of a query run as the owner (who sees everything, journal included)."""
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute(query, params).fetchall()


def add_person(database, user_name: str, *, active=True, deleted=False, email=None, employee=None, manager=None,
               started_at=None) -> str:
    """A person of source 'manual' who started three years ago unless told; their id."""
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute(
            "INSERT INTO people (user_name, primary_email, employee_number, manager_id, active, source, started_at, "
            "deleted_at) VALUES (%s, %s, %s, %s, %s, 'manual', %s, CASE WHEN %s THEN now() END) RETURNING id::text",
            (user_name, email, employee, manager, active and not deleted, started_at or now() - 3 * YEAR, deleted),
        ).fetchone()[0]


def add_grant(database, person_id: str, resource: str = "vpn", state: str = "active", reason=None) -> None:
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO grants (person_id, resource_id, state, reason, granted_by) "
                     "SELECT %s, id, %s, %s, 'test' FROM resources WHERE key = %s",
                     (person_id, state, reason, resource))


def add_completion(database, person_id: str, completed_at: datetime, course: str = COURSE) -> None:
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO training_completions (person_id, course, completed_at, source, source_id) "
                     "VALUES (%s, %s, %s, 'test', gen_random_uuid()::text)", (person_id, course, completed_at))


def allowed_person(database, user_name="alice", **kwargs) -> str:
    """A person who may use the VPN: active, granted, trained a month ago."""
    person_id = add_person(database, user_name, **kwargs)
    add_grant(database, person_id)
    add_completion(database, person_id, now() - timedelta(days=30))
    return person_id


def lapsed_person(database, user_name: str) -> None:
    """Granted, but the only completion is a day past validity (365 days) plus grace (14 days)."""
    person_id = add_person(database, user_name)
    add_grant(database, person_id)
    add_completion(database, person_id, now() - timedelta(days=365 + 14 + 1))


def grants_of(database, person_id: str) -> dict[str, tuple]:
    """resource key → (state, reason) of a person's grants."""
    return {key: (state, reason) for key, state, reason in rows(
        database, "SELECT r.key, g.state, g.reason FROM grants g JOIN resources r ON r.id = g.resource_id "
                  "WHERE g.person_id = %s", (person_id,))}
