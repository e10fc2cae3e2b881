"""The human roles a person holds (hr, auditor), shared by the console and the CLI.

Each use case changes person_roles and returns (change, detail); the caller journals detail in the same
transaction: the console through the admin's step-up proof, the CLI as the operator. A person's roles are
read at every request (auth/sessions.py), so a role removed here ends what it allowed at once.
"""

import dataclasses

import psycopg

from service.errors import BadRequest, Conflict, NotFound

GRANTABLE = ("hr", "auditor")  # manager is derived: anyone with direct reports


@dataclasses.dataclass(frozen=True)
class RoleChange:
    person_id: str
    user_name: str
    email: str
    role: str
    added: bool


def _person(conn: psycopg.Connection, email: str, role: str) -> tuple[str, str, str]:
    if role not in GRANTABLE:
        raise BadRequest(f"role must be one of {', '.join(GRANTABLE)}, not {role!r}")
    email = (email or "").strip()
    if not email or len(email) > 320:
        raise BadRequest("give the person's primary e-mail address")
    # A live person's primary e-mail names one person (sql/012_people_email_unique.sql). Locked, so a concurrent
    # leaver cannot be given a role after their deletion committed.
    row = conn.execute("SELECT id::text, user_name, primary_email FROM people WHERE deleted_at IS NULL "
                       "AND lower(primary_email) = lower(%s) FOR NO KEY UPDATE", (email,)).fetchone()
    if row is None:
        raise NotFound(f"no person has the e-mail address {email}")
    return row


def detail(change: RoleChange) -> dict:
    return {"email": change.email, "user": change.user_name, "role": change.role}


def add(conn: psycopg.Connection, email: str, role: str, *, actor: str) -> tuple[RoleChange, dict]:
    """Give the person with this primary e-mail the role; Conflict if they hold it already."""
    person_id, user_name, primary = _person(conn, email, role)
    added = conn.execute("INSERT INTO person_roles (person_id, role, granted_by) VALUES (%s, %s, %s) "
                         "ON CONFLICT DO NOTHING RETURNING 1", (person_id, role, actor)).fetchone()
    if added is None:
        raise Conflict(f"{primary} already holds the {role} role")
    change = RoleChange(person_id, user_name, primary, role, True)
    return change, detail(change)


def remove(conn: psycopg.Connection, email: str, role: str) -> tuple[RoleChange, dict]:
    """Take the role from the person with this primary e-mail; NotFound if they do not hold it."""
    person_id, user_name, primary = _person(conn, email, role)
    removed = conn.execute("DELETE FROM person_roles WHERE person_id = %s AND role = %s RETURNING 1",
                           (person_id, role)).fetchone()
    if removed is None:
        raise NotFound(f"{primary} does not hold the {role} role")
    change = RoleChange(person_id, user_name, primary, role, False)
    return change, detail(change)


def roles_of(conn: psycopg.Connection, person_id: str) -> list[tuple[str, str, object]]:
    """(role, granted_by, granted_at) of one person."""
    return conn.execute("SELECT role, granted_by, granted_at FROM person_roles WHERE person_id = %s ORDER BY role",
                        (person_id,)).fetchall()
