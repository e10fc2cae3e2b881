"""Grant changes with their journal rows: by hand (console admins, operators) and by group rules."""

import dataclasses

from service import journal
from service.access import store as grant_store


def record(conn, changes: list[grant_store.Change], *, actor: str, via: str, policy_version: str | None = None,
           **detail) -> None:
    """One journal row per grant that changed (kind grant or revoke), in the caller's transaction.

    policy_version: of the policy file whose rules made the change; else each change's own (a file rule's).
    """
    for change in changes:
        journal.append(conn, journal.Event(
            kind="grant" if change.state == "active" else "revoke", outcome=change.state, actor=actor,
            subject=change.person_id, resource=change.resource,
            reasons=({"code": via, "text": change.reason or f"granted by {via}"},),
            detail={"user": change.user_name, "via": via, **detail},
            policy_version=policy_version or change.policy_version))


def grant(conn, user: str, resource: str, *, actor: str, via: str, reason: str | None = None) -> grant_store.Change:
    """Grant USER (a userName) RESOURCE by hand, journaled; the console's admins and the CLI's operators call this."""
    change = grant_store.grant(conn, user, resource, by=actor)
    if reason:  # the journal row's reason; an active grant row itself keeps none
        change = dataclasses.replace(change, reason=reason)
    record(conn, [change], actor=actor, via=via)
    return change


def revoke(conn, user: str, resource: str, *, actor: str, via: str, reason: str | None = None) -> grant_store.Change:
    """Revoke USER's live grant on RESOURCE by hand, journaled with the reason (NotFound when there is none)."""
    change = grant_store.revoke(conn, user, resource, reason=reason or f"revoked by {actor}")
    record(conn, [change], actor=actor, via=via)
    return change


def apply_rules(conn, *, actor: str) -> list[grant_store.Change]:
    """Group rules after a membership or rule change: grant members, revoke those who left."""
    changes = grant_store.apply_rules(conn)
    record(conn, changes, actor=actor, via="group rule")
    return changes
