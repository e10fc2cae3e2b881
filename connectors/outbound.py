"""The one small interface every outbound target implements: apply an operation, then re-read to verify it.

A target takes plain values and raises only these errors; the outbox worker decides what a failure means
(retry with backoff, dead letter). Operations are idempotent (baton's rule: 404 on remove = already gone,
409 on add = already there), so a delivery repeated after a crash does no harm.
"""

import dataclasses
from typing import Protocol

DISABLE, ENABLE = "disable", "enable"


@dataclasses.dataclass(frozen=True)
class Account:
    """Whose access a row changes, as the targets may look them up."""

    person_id: str
    user_name: str | None
    email: str | None = None
    dn: str | None = None
    remote_id: str | None = None  # the target's id for the person, once found
    resource: str | None = None  # why, for targets that tell (a webhook's event)
    cause: str | None = None
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the target answered: the remote id found (for next time) and details for the journal."""

    remote_id: str | None = None
    detail: dict = dataclasses.field(default_factory=dict)


class DeliveryError(Exception):
    """A delivery that did not happen; retried unless permanent. `after`: seconds the target asked us to wait."""

    def __init__(self, message: str, *, after: float | None = None, permanent: bool = False, status: int | None = None):
        super().__init__(message)
        self.message, self.after, self.permanent, self.status = message, after, permanent, status


class Target(Protocol):
    def apply(self, op: str, account: Account, *, idempotency_key: str) -> Outcome:
        """Make the access match op (disable or enable); raise DeliveryError when it could not."""

    def verify(self, op: str, account: Account) -> Outcome | None:
        """Re-read the target: an Outcome if it shows op done, None if it does not."""


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (RFC 9110 §10.2.3; delay-seconds only, a date is treated as absent)."""
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
