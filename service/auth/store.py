"""Who an OIDC sign-in is: a provider's (iss, sub) bound to a person, else a verified e-mail.

OpenID Connect Core 1.0 §5.7: only iss and sub together identify an end-user
stably; an e-mail or preferred_username can change hands. So a verified e-mail
names a person once and the sign-in binds (iss, sub) to them; from then on the
binding decides, whatever the token's other claims say. preferred_username
counts only when the operator says the provider controls it, and never for a
person bound to another account. Every function runs in the caller's transaction.
"""

import dataclasses
import hashlib
import secrets
from datetime import datetime, timedelta

import psycopg

from service.db.query import scalar

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
# Any login the person's sources gave (userName, LDAP uid...), through the one login key (sql/013, 018).
_BY_USER_NAME = _PERSON + ("WHERE p.id = (SELECT l.person_id FROM person_logins l "
                           "WHERE l.login_key = login_key(%(value)s))")

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


# Bearer tokens: verified here, issued by store/clients.py.
_LOOKUP_TOKEN = """
SELECT c.id::text, c.name, c.client_id, t.kind, t.scopes, c.scopes, t.expires_at,
       t.expires_at IS NOT NULL AND t.expires_at <= now(), t.revoked_at IS NOT NULL,
       t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'
FROM api_tokens t JOIN api_clients c ON c.id = t.client_id AND c.revoked_at IS NULL
WHERE t.token_hash = %s
"""

# At most one write a minute per token, however busy the client is.
_TOUCH_TOKEN = """
WITH t AS (
    UPDATE api_tokens SET last_used_at = now()
    WHERE token_hash = %s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
    RETURNING client_id
)
UPDATE api_clients c SET last_used_at = now() FROM t WHERE c.id = t.client_id
"""


@dataclasses.dataclass(frozen=True)
class Token:
    """A bearer token as looked up by its hash, with its (unrevoked) client."""

    client_uuid: str
    client_name: str
    client_id: str
    kind: str  # "access" | "static"
    scopes: frozenset[str]
    expires_at: datetime | None
    expired: bool
    revoked: bool
    use_unrecorded: bool = True  # last_used_at is older than a minute: record this use


def hash_secret(secret: str) -> bytes:
    """SHA-256 of a secret or token, as stored."""
    return hashlib.sha256(secret.encode()).digest()


def lookup_token(conn: psycopg.Connection, token_hash: bytes) -> Token | None:
    """The token with this hash if its client is not revoked (expiry and revocation are reported, not filtered)."""
    row = conn.execute(_LOOKUP_TOKEN, (token_hash,)).fetchone()
    if row is None:
        return None
    uuid, name, client_id, kind, token_scopes, client_scopes, expires_at, expired, revoked, stale = row
    # A token never carries more than its client holds now.
    return Token(uuid, name, client_id, kind, frozenset(token_scopes) & frozenset(client_scopes), expires_at,
                 expired, revoked, stale)


def touch_token(conn: psycopg.Connection, token_hash: bytes) -> None:
    """Record that a token (and so its client) was used, at most once a minute."""
    conn.execute(_TOUCH_TOKEN, (token_hash,))


def flask_secret(conn: psycopg.Connection, candidate: bytes) -> bytes:
    """The key that signs Flask's flow cookie and sign-in challenges: stored once, the same for every worker."""
    conn.execute("INSERT INTO app_secrets (name, value) VALUES ('flask', %s) ON CONFLICT DO NOTHING", (candidate,))
    return scalar(conn, "SELECT value FROM app_secrets WHERE name = 'flask'")


# -- sessions -- a browser session: its token's hash, whose it is and its CSRF token (service/auth/sessions.py).
_SESSION = """
SELECT s.csrf_token, a.id::text, a.email, p.id::text, p.user_name, p.active,
       coalesce((SELECT array_agg(r.role) FROM person_roles r WHERE r.person_id = p.id), '{}'),
       EXISTS (SELECT 1 FROM people d WHERE d.manager_id = p.id AND d.active)
FROM web_sessions s
LEFT JOIN admins a ON a.id = s.admin_id AND a.active
LEFT JOIN people p ON p.id = s.person_id
WHERE s.token_hash = %s AND s.expires_at > now()
"""


def _session_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_session(conn: psycopg.Connection, *, lifetime: int, admin_id=None, person_id=None) -> str:
    """Start a session in the caller's transaction; return the cookie value (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO web_sessions (token_hash, admin_id, person_id, csrf_token, expires_at) "
        "VALUES (%s, %s, %s, %s, now() + %s)",
        (_session_hash(token), admin_id, person_id, secrets.token_urlsafe(32), timedelta(seconds=lifetime)))
    conn.execute("DELETE FROM web_sessions WHERE expires_at < now() - interval '1 day'")
    return token


def destroy_session(conn: psycopg.Connection, token: str) -> None:
    conn.execute("DELETE FROM web_sessions WHERE token_hash = %s", (_session_hash(token),))


def load_session(conn: psycopg.Connection, token: str) -> tuple | None:
    """(csrf token, admin id, admin e-mail, person id, userName, active, roles, manages) of a live session."""
    return conn.execute(_SESSION, (_session_hash(token),)).fetchone()
