"""Machine clients and their bearer tokens (api_clients, api_tokens).

Secrets and tokens are random (256 bits) and shown once; only their SHA-256
is stored, so a stolen table grants nothing. Every function runs in the
caller's transaction, so a change and its journal row commit together.
"""

import contextlib
import dataclasses
import hmac
import re
import secrets
from datetime import datetime, timedelta

import psycopg

from service.auth.principal import SCOPES
from service.auth.store import hash_secret
from service.errors import BadRequest, Conflict, NotFound

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # as the CHECK in sql/003_identity.sql

_COLUMNS = "id::text, name, client_id, scopes, created_by, created_at, last_used_at, revoked_at, secret_hash"

@dataclasses.dataclass(frozen=True)
class Client:
    """A machine client: who it is, what it may ask for, whether it still may."""

    id: str
    name: str
    client_id: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    secret_hash: bytes = dataclasses.field(repr=False, compare=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclasses.dataclass(frozen=True)
class Issued:
    """A client with a secret or token that exists only here: show it once, then drop it."""

    client: Client
    secret: str


def secret_matches(client: Client, secret: str) -> bool:
    """Whether `secret` is this client's, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret), client.secret_hash)


@contextlib.contextmanager
def _wrapped(name: str):
    """Turn constraint violations into our errors (by constraint name)."""
    try:
        yield
    except psycopg.errors.UniqueViolation as e:
        if e.diag.constraint_name == "api_clients_name_key":
            raise Conflict(f"a client named {name} exists") from None
        raise Conflict(f"client {name}: a generated value collided; try again") from None
    except psycopg.errors.CheckViolation:
        raise BadRequest(f"client {name}: a value is out of range") from None


def _valid_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise BadRequest(f"bad client name {name!r}: 1-64 letters, digits, '_', '.', '-', starting with a "
                         "letter or digit")
    return name


def _valid_scopes(scopes) -> list[str]:
    wanted = list(dict.fromkeys(scopes))
    bad = [s for s in wanted if s not in SCOPES]
    if bad or not wanted:
        problem = f"bad scope {bad[0]!r}" if bad else "at least one scope is required"
        raise BadRequest(f"{problem}; valid scopes: {', '.join(SCOPES)}")
    return wanted


def _client(row) -> Client:
    return Client(row[0], row[1], row[2], tuple(row[3]), *row[4:])


def create(conn: psycopg.Connection, *, name: str, scopes, created_by: str) -> Issued:
    """Register a client; its secret is in the result and nowhere else."""
    name, scopes = _valid_name(name), _valid_scopes(scopes)
    client_id, secret = "gh_" + secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    with _wrapped(name):
        row = conn.execute(
            f"INSERT INTO api_clients (name, client_id, secret_hash, scopes, created_by) "
            f"VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (name, client_id, hash_secret(secret), scopes, created_by)).fetchone()
    return Issued(_client(row), secret)


def list_all(conn: psycopg.Connection) -> list[Client]:
    """Every client, revoked ones included, by name."""
    return [_client(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM api_clients ORDER BY lower(name)")]


def get(conn: psycopg.Connection, client_id: str) -> Client | None:
    """The client with this OAuth client_id (revoked or not), or None."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM api_clients WHERE client_id = %s", (client_id,)).fetchone()
    return _client(row) if row else None


def _active(conn: psycopg.Connection, name: str, *, lock: bool = True) -> Client:
    row = conn.execute(f"SELECT {_COLUMNS} FROM api_clients WHERE lower(name) = lower(%s)"
                       + (" FOR UPDATE" if lock else ""), (name,)).fetchone()
    if row is None:
        raise NotFound(f"no client named {name}")
    client = _client(row)
    if client.revoked:
        raise Conflict(f"client {client.name} is revoked")
    return client


def revoke(conn: psycopg.Connection, name: str) -> tuple[Client, int]:
    """Revoke a client and every token it holds; return it and how many tokens were revoked."""
    client = _active(conn, _valid_name(name))
    row = conn.execute(f"UPDATE api_clients SET revoked_at = now() WHERE id = %s RETURNING {_COLUMNS}",
                       (client.id,)).fetchone()
    tokens = conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE client_id = %s AND revoked_at IS NULL",
                          (client.id,)).rowcount
    return _client(row), tokens


def rotate_secret(conn: psycopg.Connection, name: str) -> Issued:
    """Give a client a new secret; the old one and access tokens got with it stop working (static tokens stay)."""
    client = _active(conn, _valid_name(name))
    secret = secrets.token_urlsafe(32)
    row = conn.execute(f"UPDATE api_clients SET secret_hash = %s WHERE id = %s RETURNING {_COLUMNS}",
                       (hash_secret(secret), client.id)).fetchone()
    conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE client_id = %s AND kind = 'access' "
                 "AND revoked_at IS NULL", (client.id,))
    return Issued(_client(row), secret)


def issue_static_token(conn: psycopg.Connection, name: str) -> Issued:
    """A long-lived bearer token with the client's scopes, for SCIM pushers (Okta, Entra) that cannot do OAuth."""
    client = _active(conn, _valid_name(name), lock=False)
    token = secrets.token_urlsafe(32)
    with _wrapped(name):
        conn.execute("INSERT INTO api_tokens (token_hash, client_id, kind, scopes) VALUES (%s, %s, 'static', %s)",
                     (hash_secret(token), client.id, list(client.scopes)))
    return Issued(client, token)


def revoke_static_token(conn: psycopg.Connection, token: str) -> Client:
    """Revoke one static token by its value; return its client."""
    row = conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE token_hash = %s AND kind = 'static' "
                       "AND revoked_at IS NULL RETURNING client_id", (hash_secret(token),)).fetchone()
    if row is None:
        raise NotFound("no such live static token")
    return _client(conn.execute(f"SELECT {_COLUMNS} FROM api_clients WHERE id = %s", row).fetchone())


def save_access_token(conn: psycopg.Connection, client: Client, token: str, *, scopes, lifetime: int) -> None:
    """Store an issued access token (its hash), mark the client as used, drop its long-expired tokens."""
    with _wrapped(client.name):
        conn.execute("INSERT INTO api_tokens (token_hash, client_id, kind, scopes, expires_at) "
                     "VALUES (%s, %s, 'access', %s, now() + %s)",
                     (hash_secret(token), client.id, list(scopes), timedelta(seconds=lifetime)))
    conn.execute("UPDATE api_clients SET last_used_at = now() WHERE id = %s", (client.id,))
    conn.execute("DELETE FROM api_tokens WHERE client_id = %s AND kind = 'access' "
                 "AND expires_at < now() - interval '1 day'", (client.id,))
