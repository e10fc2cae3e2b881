"""The pure decision core: facts, policy and now in; frozen decisions out. Standard library only."""

from policies.access import decide, unavailable
from policies.loader import PolicyError, parse_policy
from policies.model import (
    AccessRule,
    Code,
    Decision,
    Facts,
    Guard,
    Person,
    Policy,
    Reason,
    Resource,
    ReviewItem,
    Reviews,
    Target,
    TrainingRequirement,
)
from policies.training import TrainingStatus, lapses_at, reminders_due, training_status

__all__ = [
    "AccessRule",
    "Code",
    "Decision",
    "Facts",
    "Guard",
    "Person",
    "Policy",
    "PolicyError",
    "Reason",
    "Resource",
    "ReviewItem",
    "Reviews",
    "Target",
    "TrainingRequirement",
    "TrainingStatus",
    "decide",
    "lapses_at",
    "parse_policy",
    "reminders_due",
    "training_status",
    "unavailable",
]
