"""Who an OIDC sign-in is: a provider's (iss, sub) bound to a person, else a verified e-mail.

OpenID Connect Core 1.0 §5.7: only iss and sub together identify an end-user
stably; an e-mail or preferred_username can change hands. So a verified e-mail
names a person once and the sign-in binds (iss, sub) to them; from then on the
binding decides, whatever the token's other claims say. preferred_username
counts only when the operator says the provider controls it, and never for a
person bound to another account. Every function runs in the caller's transaction.
"""

import dataclasses

import psycopg

_PERSON = """
SELECT p.id::text, p.user_name, p.active AND p.deleted_at IS NULL,
       coalesce((SELECT array_agg(r.role) FROM person_roles r WHERE r.person_id = p.id), '{}'),
       EXISTS (SELECT 1 FROM people d WHERE d.manager_id = p.id AND d.active)
FROM people p
"""
_BY_BINDING = _PERSON + """
JOIN person_oidc_identities i ON i.person_id = p.id
WHERE i.issuer = %(issuer)s AND i.subject = %(subject)s
"""
# SCIM stores emails as [{"value": ..., "type": ...}]; a bare string element counts too.
_BY_EMAIL = _PERSON + """
WHERE lower(p.primary_email) = lower(%(value)s)
   OR EXISTS (SELECT 1 FROM jsonb_array_elements(p.emails) e
              WHERE lower(coalesce(e ->> 'value', e #>> '{}')) = lower(%(value)s))
"""
_BY_USER_NAME = _PERSON + "WHERE lower(p.user_name) = lower(%(value)s)"

_BOUND_SUBJECT = "SELECT subject FROM person_oidc_identities WHERE issuer = %s AND person_id = %s"
_BIND = """
INSERT INTO person_oidc_identities (issuer, subject, person_id) VALUES (%s, %s, %s)
ON CONFLICT DO NOTHING RETURNING true
"""
_TOUCH = "UPDATE person_oidc_identities SET last_seen_at = now() WHERE issuer = %s AND subject = %s"


class AlreadyBound(Exception):
    """The person, or this (iss, sub), was bound to another account while the sign-in ran."""


@dataclasses.dataclass(frozen=True)
class Person:
    """Someone an ID token may name, with the roles that decide whether they may sign in."""

    id: str
    user_name: str
    active: bool
    roles: frozenset


@dataclasses.dataclass(frozen=True)
class Match:
    """The people a token names and how they were found: binding, email, username or none."""

    people: tuple[Person, ...]
    how: str


def find(conn: psycopg.Connection, claims: dict, *, trust_username: bool) -> Match:
    """The people a validated ID token names: its binding first, else a verified e-mail, else (trusted) username."""
    bound = _people(conn, _BY_BINDING, {"issuer": claims["iss"], "subject": claims["sub"]})
    if bound:  # even an inactive person: never a fall-through to someone else's e-mail
        return Match(bound, "binding")
    email, user_name = claims.get("email"), claims.get("preferred_username")
    if isinstance(email, str) and email and claims.get("email_verified") is True:
        found = _people(conn, _BY_EMAIL, {"value": email})
        if found:
            return Match(found, "email")
    if trust_username and isinstance(user_name, str) and user_name:
        found = _people(conn, _BY_USER_NAME, {"value": user_name})
        if found:
            return Match(found, "username")
    return Match((), "none")


def bound_subject(conn: psycopg.Connection, issuer: str, person_id: str) -> str | None:
    """The sub the person is bound to at this issuer, if any."""
    row = conn.execute(_BOUND_SUBJECT, (issuer, person_id)).fetchone()
    return row[0] if row else None


def bind(conn: psycopg.Connection, issuer: str, subject: str, person_id: str) -> bool:
    """Bind (iss, sub) to the person; False if a concurrent sign-in already did; AlreadyBound if taken otherwise."""
    if conn.execute(_BIND, (issuer, subject, person_id)).fetchone():
        return True
    if bound_subject(conn, issuer, person_id) == subject:
        return False
    raise AlreadyBound(subject)


def touch(conn: psycopg.Connection, issuer: str, subject: str) -> None:
    """Record that a bound account signed in again."""
    conn.execute(_TOUCH, (issuer, subject))


def _people(conn: psycopg.Connection, query: str, params: dict) -> tuple[Person, ...]:
    rows = conn.execute(query, params).fetchall()
    return tuple(Person(id=pid, user_name=name, active=active,
                        roles=frozenset(roles) | ({"manager"} if manages else set()))
                 for pid, name, active, roles, manages in rows)
