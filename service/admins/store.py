"""Admins, their WebAuthn keys, single-use challenges and enrollment links."""

import dataclasses
import hashlib
import secrets
from datetime import datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from service.admins.webauthn import CHALLENGE_SECONDS, NewKey, describe_kind
from service.db.query import one, scalar
from service.errors import BadRequest, Conflict, NotFound

ENROLLMENT_MINUTES = 15


@dataclasses.dataclass(frozen=True)
class Admin:
    id: str
    email: str
    display_name: str | None
    user_handle: bytes
    active: bool


@dataclasses.dataclass(frozen=True)
class Key:
    id: bytes
    admin_id: str
    name: str
    public_key: bytes
    sign_count: int
    aaguid: str
    attestation_fmt: str
    attested: bool
    backup_eligible: bool
    created_at: datetime
    last_used_at: datetime | None

    @property
    def kind(self) -> str:
        return describe_kind(self.backup_eligible, self.attested)


@dataclasses.dataclass(frozen=True)
class Challenge:
    challenge: bytes
    purpose: str
    admin_id: str | None
    action: str | None
    body_hash: str | None
    step_up: dict | None
    expired: bool


_ADMIN = "SELECT id::text, email, display_name, user_handle, active FROM admins"
_KEY = ("SELECT id, admin_id::text, name, public_key, sign_count, aaguid::text, attestation_fmt, attested, "
        "backup_eligible, created_at, last_used_at FROM webauthn_credentials")


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def admin_by_email(conn: psycopg.Connection, email: str) -> Admin | None:
    row = conn.execute(_ADMIN + " WHERE lower(email) = lower(%s)", (email,)).fetchone()
    return Admin(*row) if row else None


def admin_by_id(conn: psycopg.Connection, admin_id: str) -> Admin | None:
    row = conn.execute(_ADMIN + " WHERE id = %s", (admin_id,)).fetchone()
    return Admin(*row) if row else None


def list_admins(conn: psycopg.Connection) -> list[tuple[Admin, int]]:
    """Active admins with how many keys each holds."""
    rows = conn.execute(
        "SELECT a.id::text, a.email, a.display_name, a.user_handle, a.active, count(c.id) FROM admins a "
        "LEFT JOIN webauthn_credentials c ON c.admin_id = a.id WHERE a.active GROUP BY a.id ORDER BY lower(a.email)"
    ).fetchall()
    return [(Admin(*r[:5]), r[5]) for r in rows]


def create_admin(conn: psycopg.Connection, email: str, *, display_name: str | None, created_by: str) -> Admin:
    """Add an admin (or re-activate a removed one); Conflict if already active."""
    email = (email or "").strip()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise BadRequest(f"not an e-mail address: {email!r}")
    existing = admin_by_email(conn, email)
    if existing and existing.active:
        raise Conflict(f"{email} is already an admin")
    if existing:
        # A re-added admin starts over: no key, session, link or challenge survives from before,
        # whatever registered while they were removed; a new user handle too (WebAuthn §14.6.1).
        _drop_credentials(conn, existing.id)
        handle = secrets.token_bytes(32)
        conn.execute("UPDATE admins SET active = true, user_handle = %s WHERE id = %s", (handle, existing.id))
        return dataclasses.replace(existing, active=True, user_handle=handle)
    row = one(conn,
        "INSERT INTO admins (email, display_name, user_handle, created_by) VALUES (%s, %s, %s, %s) "
        "RETURNING id::text, email, display_name, user_handle, active",
        (email, display_name, secrets.token_bytes(32), created_by))
    return Admin(*row)


def remove_admin(conn: psycopg.Connection, email: str) -> Admin:
    """Deactivate an admin, drop their keys, sessions, pending links and challenges; never the last one."""
    admin = admin_by_email(conn, email)
    if admin is None or not admin.active:
        raise NotFound(f"no admin {email}")
    others = scalar(conn, "SELECT count(*) FROM admins WHERE active AND id <> %s", (admin.id,))
    if not others:
        raise Conflict("the last admin cannot be removed")
    # First, so that an enrollment holding the admin row FOR SHARE (add_key) finishes before
    # the deletes below, which then see and drop its key.
    conn.execute("UPDATE admins SET active = false WHERE id = %s", (admin.id,))
    _drop_credentials(conn, admin.id)
    return admin


def _drop_credentials(conn: psycopg.Connection, admin_id: str) -> None:
    conn.execute("DELETE FROM enrollments WHERE admin_id = %s AND used_at IS NULL", (admin_id,))
    conn.execute("DELETE FROM webauthn_challenges WHERE admin_id = %s", (admin_id,))
    conn.execute("DELETE FROM webauthn_credentials WHERE admin_id = %s", (admin_id,))
    conn.execute("DELETE FROM web_sessions WHERE admin_id = %s", (admin_id,))


def create_enrollment(conn: psycopg.Connection, admin_id: str, *, created_by: str) -> str:
    """A single-use enrollment token, valid ENROLLMENT_MINUTES; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO enrollments (token_hash, admin_id, created_by, expires_at) VALUES (%s, %s, %s, now() + %s)",
        (_hash(token), admin_id, created_by, timedelta(minutes=ENROLLMENT_MINUTES)),
    )
    return token


def enrollment_admin(conn: psycopg.Connection, token: str) -> Admin | None:
    """The active admin an unused, unexpired enrollment token is for."""
    row = conn.execute(
        "SELECT e.admin_id::text FROM enrollments e JOIN admins a ON a.id = e.admin_id AND a.active "
        "WHERE e.token_hash = %s AND e.used_at IS NULL AND e.expires_at > now()", (_hash(token),)).fetchone()
    return admin_by_id(conn, row[0]) if row else None


def enroll_key(conn: psycopg.Connection, token: str, admin_id: str, name: str, key: NewKey) -> bool:
    """Add the first key with an enrollment token, in the caller's transaction; False if the admin was removed
    or the token is spent (nothing is stored then).

    The key first (add_key locks the admin, then the token's row is locked): the same
    order as remove_admin, so a removal and an enrollment wait for each other, never deadlock.
    """
    if not add_key(conn, admin_id, name, key):
        return False
    row = conn.execute(
        "UPDATE enrollments SET used_at = now() WHERE token_hash = %s AND admin_id = %s AND used_at IS NULL "
        "AND expires_at > now() RETURNING 1", (_hash(token), admin_id)).fetchone()
    return row is not None


def keys_of(conn: psycopg.Connection, admin_id: str) -> list[Key]:
    return [Key(*r) for r in conn.execute(_KEY + " WHERE admin_id = %s ORDER BY created_at", (admin_id,))]


def key_by_id(conn: psycopg.Connection, credential_id: bytes) -> Key | None:
    row = conn.execute(_KEY + " WHERE id = %s", (credential_id,)).fetchone()
    return Key(*row) if row else None


def add_key(conn: psycopg.Connection, admin_id: str, name: str, key: NewKey) -> bool:
    """Store a verified key; False (nothing stored) if the admin is not active.

    The admin row stays locked FOR SHARE until the caller commits: a removal
    (remove_admin) waits, then drops this key with the others.
    """
    if conn.execute("SELECT 1 FROM admins WHERE id = %s AND active FOR SHARE", (admin_id,)).fetchone() is None:
        return False
    name = (name or "").strip()[:64] or "security key"
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO webauthn_credentials (id, admin_id, name, public_key, sign_count, aaguid, attestation_fmt,"
                " attested, backup_eligible, backed_up, user_verified, transports) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key.credential_id, admin_id, name, key.public_key, key.sign_count, key.aaguid, key.fmt, key.attested,
                 key.backup_eligible, key.backed_up, key.user_verified, list(key.transports)))
    except psycopg.errors.UniqueViolation:
        raise Conflict("this key is already registered") from None
    return True


def remove_key(conn: psycopg.Connection, admin_id: str, credential_id: bytes) -> Key:
    """Remove one of an admin's keys; never their last one."""
    keys = keys_of(conn, admin_id)
    key = next((k for k in keys if k.id == credential_id), None)
    if key is None:
        raise NotFound("no such key")
    if len(keys) == 1:
        raise Conflict("an admin keeps at least one key; add another before removing this one")
    conn.execute("DELETE FROM webauthn_credentials WHERE id = %s", (credential_id,))
    return key


def record_use(conn: psycopg.Connection, credential_id: bytes, *, old: int, new: int) -> bool:
    """Store the new sign counter; False if another request moved it first."""
    row = conn.execute(
        "UPDATE webauthn_credentials SET sign_count = %s, last_used_at = now() WHERE id = %s AND sign_count = %s "
        "RETURNING 1", (new, credential_id, old)).fetchone()
    return row is not None


def create_challenge(conn: psycopg.Connection, purpose: str, *, admin_id: str | None = None, action: str | None = None,
                     body_hash: str | None = None, step_up: dict | None = None) -> bytes:
    """A fresh random challenge, valid CHALLENGE_SECONDS, recorded for its single use."""
    challenge = secrets.token_bytes(32)
    conn.execute(
        "INSERT INTO webauthn_challenges (challenge, purpose, admin_id, action, body_hash, step_up, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, now() + %s)",
        (challenge, purpose, admin_id, action, body_hash, Jsonb(step_up) if step_up else None,
         timedelta(seconds=CHALLENGE_SECONDS)))
    conn.execute("DELETE FROM webauthn_challenges WHERE expires_at < now() - interval '1 hour'")
    return challenge


def use_login_challenge(conn: psycopg.Connection, challenge: bytes, expires_at: datetime) -> bool:
    """Record a signed sign-in challenge as used, in the sign-in's transaction; False if it was already.

    Sign-in challenges are signed, not stored (webauthn.login_challenge): a row is written only
    when one is used, and kept an hour past its expiry (as the others), so that clocks a little
    apart between replicas cannot make it good twice.
    """
    conn.execute("DELETE FROM webauthn_challenges WHERE expires_at < now() - interval '1 hour'")
    row = conn.execute(
        "INSERT INTO webauthn_challenges (challenge, purpose, expires_at) VALUES (%s, 'login', %s) "
        "ON CONFLICT (challenge) DO NOTHING RETURNING 1", (challenge, expires_at)).fetchone()
    return row is not None


def consume_challenge(conn: psycopg.Connection, challenge: bytes, purpose: str) -> Challenge | None:
    """Take a challenge made for `purpose` out, whatever happens next: each is good for one response only.

    Only of that purpose: a used sign-in challenge's record (use_login_challenge) must outlive any
    attempt to present it elsewhere, or the sign-in could be replayed.
    """
    row = conn.execute(
        "DELETE FROM webauthn_challenges WHERE challenge = %s AND purpose = %s "
        "RETURNING challenge, purpose, admin_id::text, action, body_hash, step_up, expires_at <= now()",
        (challenge, purpose)).fetchone()
    return Challenge(*row) if row else None
