"""Bearer tokens on requests (RFC 6750): the client behind a token, verified and cached per process."""

import time
from datetime import UTC, datetime

import psycopg

from service.auth import store
from service.auth.principal import Principal
from service.db import first_line
from service.errors import DatabaseUnavailable

_MAX_TOKEN = 256


class TokenCache:
    """Bearer tokens verified in the last few seconds, per process (GATEHOUSE_TOKEN_CACHE_SECONDS; 0: off).

    Spares a database round trip on every gateway check; a revoked token stops
    working on every worker within that many seconds.
    """

    def __init__(self, seconds: float, *, max_entries: int = 10_000):
        self.seconds, self.max_entries = seconds, max_entries
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    def get(self, digest: bytes) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, digest: bytes, principal: Principal, expires_at) -> None:
        if self.seconds <= 0:
            return
        until = time.monotonic() + self.seconds
        if expires_at is not None:
            until = min(until, time.monotonic() + (expires_at - datetime.now(UTC)).total_seconds())
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = (until, principal)


def principal_from_request(services, request) -> Principal | None:
    """The client behind `Authorization: Bearer <token>` (RFC 6750 §2.1), if the token is live."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN:
        return None
    digest = store.hash_secret(token)
    cached = services.tokens.get(digest)
    if cached is not None:
        return cached
    try:
        with services.pool.connection() as conn:
            found = store.lookup_token(conn, digest)
            if found is None or found.expired or found.revoked:
                return None
            if found.use_unrecorded:  # spare a write on every request of a busy client
                store.touch_token(conn, digest)
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"database not reachable: {first_line(e)}") from None
    principal = Principal(kind="client", id=found.client_uuid, name=found.client_name, scopes=found.scopes)
    services.tokens.put(digest, principal, found.expires_at)
    return principal
