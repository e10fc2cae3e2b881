"""The training rule: when a required course lapses, and which reminders are due."""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from policies.model import TrainingRequirement, require_aware

OK, DUE_SOON, LAPSED, MISSING = "ok", "due_soon", "lapsed", "missing"


@dataclass(frozen=True)
class TrainingStatus:
    """Where one person stands on one course at `now`.

    state: "ok"; "due_soon" (never completed but still in the grace from the
    start date, or inside the largest reminder window); "lapsed" (completed,
    but lapses_at <= now); "missing" (never completed and the grace is over).
    next_reminder: the offset in days of the next reminder still ahead, or None.
    """

    course: str
    state: str
    lapses_at: datetime
    completed_at: datetime | None
    next_reminder: int | None

    @property
    def denies(self) -> bool:
        """Whether this status ends access to the resources the course gates."""
        return self.state in (LAPSED, MISSING)


def lapses_at(requirement: TrainingRequirement, completed_at: datetime | None, started_at: datetime) -> datetime:
    """completed_at + validity + grace; never completed: started_at + grace."""
    if completed_at is None:
        return started_at + timedelta(days=requirement.grace_days)
    return completed_at + timedelta(days=requirement.validity_days + requirement.grace_days)


def training_status(
    completions: Mapping[str, datetime],
    requirements: Iterable[TrainingRequirement],
    now: datetime,
    *,
    started_at: datetime,
    department: str | None,
) -> tuple[TrainingStatus, ...]:
    """The status of each requirement that applies to `department`, in the given order."""
    require_aware(now, "now")
    return tuple(
        _status(r, completions.get(r.course), now, started_at)
        for r in requirements
        if r.applies_to_department(department)
    )


def _status(
    requirement: TrainingRequirement, completed_at: datetime | None, now: datetime, started_at: datetime
) -> TrainingStatus:
    lapse = lapses_at(requirement, completed_at, started_at)
    window = timedelta(days=max(requirement.reminder_days, default=0))
    if lapse <= now:
        state = LAPSED if completed_at is not None else MISSING
    elif completed_at is None or now >= lapse - window:
        state = DUE_SOON
    else:
        state = OK
    ahead = [d for d in requirement.reminder_days if lapse - timedelta(days=d) > now]
    return TrainingStatus(requirement.course, state, lapse, completed_at, max(ahead, default=None))


def reminders_due(
    status: TrainingStatus, reminder_days: Iterable[int], already_sent: Collection[int], now: datetime
) -> tuple[int, ...]:
    """Reminder offsets (days before lapse) whose time has come and not yet sent, largest first."""
    require_aware(now, "now")
    # already_sent is per lapses_at: a new completion moves the lapse and starts
    # a fresh set. After the lapse nothing is reminded; the suspension is notified.
    if status.lapses_at <= now:
        return ()
    due = {d for d in reminder_days if status.lapses_at - timedelta(days=d) <= now}
    return tuple(sorted(due - set(already_sent), reverse=True))
