"""Frozen values the decision core takes and returns: the policy, the facts, the decision."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

EVERYONE = "everyone"
ALL_RESOURCES = "*"
GRANT_STATES = (None, "active", "suspended", "revoked")
REVIEW_DECISIONS = (None, "approve", "revoke")
CAMPAIGN_STATES = ("open", "held", "confirmed", "closed")


def require_aware(value: datetime, what: str) -> None:
    """Raise ValueError unless value is a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")


@dataclass(frozen=True)
class Resource:
    """Something a person may be granted: a VPN or a tool."""

    key: str
    name: str
    kind: str
    owners: tuple[str, ...] = ()  # e-mail addresses of the people who review it when no manager can


@dataclass(frozen=True)
class TrainingRequirement:
    """A course that gates some resources for some people."""

    course: str
    name: str
    validity_days: int
    grace_days: int
    gates: frozenset[str]
    applies_to: str | frozenset[str] = EVERYONE
    reminder_days: tuple[int, ...] = ()

    def gates_resource(self, key: str) -> bool:
        """Whether this course must be current to use the resource `key`."""
        return ALL_RESOURCES in self.gates or key in self.gates

    def applies_to_department(self, department: str | None) -> bool:
        """Whether this course is required of people in `department`."""
        if self.applies_to == EVERYONE:
            return True
        return department is not None and department in self.applies_to


@dataclass(frozen=True)
class Reviews:
    """Managers re-approve access every cadence_days, within due_days; the rest tunes reminders, guard and stages."""

    cadence_days: int
    due_days: int
    resources: tuple[str, ...] = ()  # what a scheduled campaign covers; empty: every resource
    reminder_days: tuple[int, ...] = (7, 3, 1)  # before the due instant, to reviewers with open items
    escalate_days: int = 3  # from this many days before the due instant, the reviewer's manager is copied
    guard_share: float = 0.20  # a deadline missing more than this share of a campaign's items is held
    unused_days: int = 60  # no allowed check in this window: the item is recommended for revocation
    comment_required_for_revoke: bool = False
    require_sso: bool = False  # deciding needs an SSO session as the reviewer, not only the link
    bulk_items: int = 50  # approving more than this many items ...
    bulk_seconds: int = 60  # ... within this many seconds of opening the page goes to a second stage
    mover_due_days: int = 7


@dataclass(frozen=True)
class Guard:
    """A sync deactivating more than this share or count is held for an admin."""

    max_deactivation_share: float
    max_deactivations: int


@dataclass(frozen=True)
class AccessRule:
    """From the policy file: members of `group` (by name, any case) hold each of `resources` while members."""

    group: str
    resources: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    """A downstream system where a resource's access also lives (a tool over SCIM, an LDAP group, a webhook).

    `settings` holds the type's own keys (url, group_dn, token_env, ...); secrets are named by file path or
    environment variable there, never given. Deliveries are retried with exponential backoff from
    backoff_seconds up to backoff_max_seconds, and dead-lettered after max_attempts. A row the target took but
    a re-read has not confirmed within confirm_within_seconds is escalated to the admins; after
    quarantine_after failed attempts in a row the target is quarantined (tried at 6 h, 12 h, 24 h, then daily).
    """

    key: str
    type: str
    resource: str
    settings: Mapping[str, object]
    max_attempts: int = 8
    backoff_seconds: int = 30
    backoff_max_seconds: int = 3600
    confirm_within_seconds: int = 3600
    quarantine_after: int = 20

    def __post_init__(self):
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))


@dataclass(frozen=True)
class Policy:
    """A parsed policy file; version is the SHA-256 hex of its bytes."""

    version: str
    resources: tuple[Resource, ...]
    training: tuple[TrainingRequirement, ...]
    reviews: Reviews
    guard: Guard
    targets: tuple[Target, ...] = ()
    rules: tuple[AccessRule, ...] = ()
    text: str = field(default="", repr=False, compare=False)  # the file as read: kept as evidence of this version

    def resource(self, key: str) -> Resource | None:
        """The resource named `key`, or None."""
        return next((r for r in self.resources if r.key == key), None)

    def requirements_for(self, key: str) -> tuple[TrainingRequirement, ...]:
        """The courses that gate the resource `key`, in policy order."""
        return tuple(t for t in self.training if t.gates_resource(key))


@dataclass(frozen=True)
class Person:
    """What the decision needs to know about a person."""

    active: bool
    deleted: bool
    started_at: datetime
    department: str | None = None

    def __post_init__(self):
        require_aware(self.started_at, "started_at")


@dataclass(frozen=True)
class ReviewItem:
    """An open review item: a manager's approve/revoke for one campaign."""

    campaign: str
    due_at: datetime
    decision: str | None = None
    # The campaign's state and counts, so the guard is decided live at `now` (policies.reviews.held).
    state: str = "open"
    open_items: int = 0
    total_items: int = 0
    guard_share: float = 1.0

    def __post_init__(self):
        require_aware(self.due_at, "due_at")
        if self.decision not in REVIEW_DECISIONS:
            raise ValueError(f"review decision must be one of {REVIEW_DECISIONS}, got {self.decision!r}")
        if self.state not in CAMPAIGN_STATES:
            raise ValueError(f"campaign state must be one of {CAMPAIGN_STATES}, got {self.state!r}")


@dataclass(frozen=True)
class Facts:
    """Everything loaded for one (person, resource) check; person None means no such person.

    `ambiguous` holds the ids of the different people the reference named when it named more
    than one (then person is None): nobody is picked, the check denies.
    """

    person: Person | None
    resource: str
    resource_known: bool
    grant: str | None = None
    grant_reason: str | None = None
    completions: Mapping[str, datetime] = field(default_factory=dict)
    reviews: tuple[ReviewItem, ...] = ()
    ambiguous: tuple[str, ...] = ()

    def __post_init__(self):
        if self.grant not in GRANT_STATES:
            raise ValueError(f"grant must be one of {GRANT_STATES}, got {self.grant!r}")
        object.__setattr__(self, "ambiguous", tuple(self.ambiguous))
        if self.ambiguous and (self.person is not None or len(set(self.ambiguous)) < 2):
            raise ValueError("ambiguous names two or more different people, and then person is None")
        for course, completed_at in self.completions.items():
            require_aware(completed_at, f"completions[{course!r}]")
        # Copies, so a caller mutating its dict or list cannot change frozen facts.
        object.__setattr__(self, "completions", MappingProxyType(dict(self.completions)))
        object.__setattr__(self, "reviews", tuple(self.reviews))


class Code(StrEnum):
    """Reason codes; training and review codes are suffixed with ':<course>' or ':<campaign>'."""

    OK = "ok"
    PERSON_UNKNOWN = "person_unknown"
    PERSON_INACTIVE = "person_inactive"
    PERSON_AMBIGUOUS = "person_ambiguous"
    RESOURCE_UNKNOWN = "resource_unknown"
    NO_GRANT = "no_grant"
    GRANT_REVOKED = "grant_revoked"
    GRANT_SUSPENDED = "grant_suspended"
    TRAINING_LAPSED = "training_lapsed"
    TRAINING_MISSING = "training_missing"
    REVIEW_MISSED = "review_missed"
    REVIEW_REVOKED = "review_revoked"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Reason:
    """Why a decision came out as it did: a machine code and a sentence for people."""

    code: str
    text: str

    @classmethod
    def of(cls, kind: Code, text: str, subject: str | None = None) -> "Reason":
        """A reason of `kind`, its code suffixed with ':<subject>' when given."""
        code = kind.value if subject is None else f"{kind.value}:{subject}"
        return cls(code, text)

    @property
    def kind(self) -> Code:
        """The code without its ':<subject>' suffix."""
        return Code(self.code.partition(":")[0])


@dataclass(frozen=True)
class Decision:
    """Allow or deny, every reason, and the policy version that decided."""

    allow: bool
    reasons: tuple[Reason, ...]
    policy_version: str

    def __post_init__(self):
        kinds = [r.kind for r in self.reasons]
        valid = kinds == [Code.OK] if self.allow else bool(kinds) and Code.OK not in kinds
        if not valid:
            raise ValueError("an allow has exactly one 'ok' reason; a deny has one or more deny reasons")

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes, in order (what the journal stores)."""
        return tuple(r.code for r in self.reasons)
