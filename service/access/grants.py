"""Grant changes with their journal rows: by hand (admin actions) and by group rules."""

from service import journal
from service.access import store as grants


def record(conn, changes: list[grants.Change], *, actor: str, via: str, **detail) -> None:
    """One journal row per grant that changed (kind grant or revoke), in the caller's transaction."""
    for change in changes:
        journal.append(conn, journal.Event(
            kind="grant" if change.state == "active" else "revoke", outcome=change.state, actor=actor,
            subject=change.person_id, resource=change.resource,
            reasons=({"code": via, "text": change.reason or f"granted by {via}"},),
            detail={"user": change.user_name, "via": via, **detail}))


def apply_rules(conn, *, actor: str) -> list[grants.Change]:
    """Group rules after a membership or rule change: grant members, revoke those who left."""
    changes = grants.apply_rules(conn)
    record(conn, changes, actor=actor, via="group rule")
    return changes
