"""Who a caller is (Principal), what it may hold (SCOPES, ROLES), and the two refusals; no Flask here."""

import dataclasses

from service.errors import GatehouseError

SCOPES = ("scim", "access:check", "training:write", "journal:read")
ROLES = ("admin", "auditor", "hr", "manager")


class Unauthenticated(GatehouseError):
    """Authentication is required."""

    status = 401
    code = "unauthenticated"
    headers = {"WWW-Authenticate": 'Bearer realm="gatehouse"'}  # RFC 6750 §3


class Forbidden(GatehouseError):
    """You may not do this."""

    status = 403
    code = "forbidden"


@dataclasses.dataclass(frozen=True)
class Principal:
    """An authenticated caller: an admin, a person, or a machine client."""

    kind: str  # "admin" | "person" | "client"
    id: str
    name: str
    roles: frozenset = frozenset()
    scopes: frozenset = frozenset()

    @property
    def actor(self) -> str:
        """How the journal names this caller."""
        return f"{self.kind}:{self.name}"
