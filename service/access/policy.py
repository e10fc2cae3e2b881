"""Access as code: the policy file's group → resource rules applied at start and by `gatehouse policy apply`.

Load, decide, write, under one advisory lock so replicas starting together
apply a version once: the rules in force and the file's are diffed (a pure
function), written, and the group rules re-run in a savepoint; a change that
would end more grants than the policy's [guard] allows is rolled back and held
(stored with the file's rules, journaled) until an admin or operator confirms
it. Each grant a file rule creates or ends is journaled with the policy version.
"""

import dataclasses
import logging
import uuid

import psycopg

from policies import Policy
from policies.rules import RuleChanges, diff_rules, hold_reason, rule_pairs
from service import journal
from service.access import grants
from service.access import policy_store as store
from service.access import store as grant_store
from service.access.resources import sync_resources
from service.db import first_line
from service.db.locks import advisory_lock, transaction_lock
from service.errors import Conflict, DatabaseUnavailable, GatehouseError, NotFound

log = logging.getLogger(__name__)

LOCK = "policy:apply"
VIA = "policy"  # the journal rows' reason code and detail.via for grants the file's rules change


class PolicyBusy(GatehouseError):
    """Another process is applying the policy."""

    status = 409
    code = "policy_busy"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How an application ended: applied, unchanged, held, dry-run (nothing written), confirmed or discarded."""

    state: str
    version: str
    run_id: str | None
    rules: RuleChanges
    changes: tuple[grant_store.Change, ...]
    message: str
    held: bool = False  # a dry run: whether the real run would be held

    def counts(self) -> dict:
        return {"rules_added": len(self.rules.added), "rules_removed": len(self.rules.removed),
                "granted": sum(c.state == "active" for c in self.changes),
                "ended": sum(c.state != "active" for c in self.changes)}


def apply_policy(url: str, policy: Policy, *, source: str, actor: str, timeout: float, dry_run: bool = False,
                 wait: float = 60) -> Outcome:
    """Apply the file's rules once per version across replicas; hold a change over the guard (PolicyBusy: locked)."""
    try:
        with advisory_lock(url, LOCK, timeout=timeout, wait=wait) as conn:
            if conn is None:
                raise PolicyBusy(f"another process is applying the policy (waited {wait:g} s)")
            return _apply(conn, policy, source=source, actor=actor, dry_run=dry_run)
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"cannot apply the policy: {first_line(e)}") from None


def _apply(conn: psycopg.Connection, policy: Policy, *, source: str, actor: str, dry_run: bool) -> Outcome:
    version, run_id, outcome = policy.version, str(uuid.uuid4()), None
    with conn.transaction() as outer:
        sync_resources(conn, policy)  # the rules name the file's resources
        waiting = store.held(conn)
        if waiting and waiting.version == version and not dry_run:  # held already (a replica, an earlier start)
            return Outcome("held", version, waiting.id, RuleChanges((), ()), (), waiting.message or "held")
        in_force, wanted = store.in_force(conn), rule_pairs(policy)
        diff = diff_rules(wanted, store.current_rules(conn))
        active = store.active_grants(conn)
        with conn.transaction() as attempt:  # a savepoint: a held change or a dry run leaves nothing of it
            store.write_rules(conn, diff, version)
            changes = tuple(grant_store.apply_rules(conn))
            ending = [f"{c.user_name} → {c.resource}" for c in changes if c.state != "active"]
            reason = hold_reason(policy.guard, ending=ending, active=active)
            if dry_run or reason:
                raise psycopg.Rollback(attempt)
            grants.record(conn, list(changes), actor=actor, via=VIA, policy_version=version, run=run_id)
        if dry_run:
            outcome = Outcome("dry-run", version, None, diff, changes, "would be held: " + reason if reason
                              else _summary(diff, changes), held=bool(reason))
            raise psycopg.Rollback(outer)
        if reason:
            outcome = Outcome("held", version, run_id, diff, changes, reason)
        elif in_force == version and not diff and not changes:
            return Outcome("unchanged", version, None, diff, (), "in force already; nothing to change")
        else:
            outcome = Outcome("applied", version, run_id, diff, changes, _summary(diff, changes))
        superseded = store.add_run(conn, run_id, version=version, source=source, state=outcome.state, actor=actor,
                                   rules=list(wanted), counts=outcome.counts(), message=reason)
        if diff or changes or superseded:  # a new version with the same rules changes no access: its run row only
            _journal(conn, outcome, actor=actor, source=source, superseded=superseded)
    if outcome.state == "held":
        log.warning("policy %s held: %s", version[:12], reason)
    return outcome


def _summary(diff: RuleChanges, changes) -> str:
    granted = sum(c.state == "active" for c in changes)
    return (f"{len(diff.added)} rules added, {len(diff.removed)} removed; {granted} grants created, "
            f"{len(changes) - granted} ended")


def _journal(conn, outcome: Outcome, *, actor: str, source: str, superseded=()) -> None:
    """The run's own row (kind admin, action policy.apply), with the policy version."""
    detail = {"action": "policy.apply", "run": outcome.run_id, "source": source, "counts": outcome.counts(),
              "rules_added": [list(p) for p in outcome.rules.added],
              "rules_removed": [list(p) for p in outcome.rules.removed]}
    if superseded:
        detail["superseded"] = list(superseded)
    reasons = ({"code": "guard", "text": outcome.message},) if outcome.state == "held" else ()
    journal.append(conn, journal.Event(kind="admin", outcome=outcome.state, actor=actor, reasons=reasons,
                                       detail=detail, policy_version=outcome.version))


def confirm(conn: psycopg.Connection, run_id: str, *, actor: str) -> Outcome:
    """Apply a held run's rules in the caller's transaction (the caller journals the decision itself)."""
    transaction_lock(conn, LOCK)
    run = _held(conn, run_id)
    diff = diff_rules([tuple(p) for p in run.rules], store.current_rules(conn))
    store.write_rules(conn, diff, run.version)
    changes = tuple(grant_store.apply_rules(conn))
    grants.record(conn, list(changes), actor=actor, via=VIA, policy_version=run.version, run=run.id)
    store.decide_run(conn, run.id, state="confirmed", actor=actor)
    return Outcome("confirmed", run.version, run.id, diff, changes, "applied: " + _summary(diff, changes))


def discard(conn: psycopg.Connection, run_id: str, *, actor: str) -> Outcome:
    """Drop a held run: nothing of it is applied (the next start or apply plans afresh)."""
    transaction_lock(conn, LOCK)
    run = _held(conn, run_id)
    store.decide_run(conn, run.id, state="discarded", actor=actor)
    return Outcome("discarded", run.version, run.id, RuleChanges((), ()), (), "discarded; nothing was applied")


def held_for(conn: psycopg.Connection, version: str) -> store.Run:
    """The run held for this version of the file; NotFound when none is."""
    run = store.held(conn)
    if run is None or run.version != version:
        held_note = f" (the held change is of version {run.version[:12]})" if run else ""
        raise NotFound(f"no held policy change for version {version[:12]} of the file{held_note}: "
                       "run gatehouse policy apply first")
    return run


def _held(conn: psycopg.Connection, run_id: str) -> store.Run:
    try:
        uuid.UUID(run_id)
    except (ValueError, TypeError):
        raise NotFound(f"no policy run {run_id!r}") from None
    run = store.get_run(conn, run_id, lock=True)
    if run is None:
        raise NotFound(f"no policy run {run_id!r}")
    if run.state != "held":
        raise Conflict(f"policy run {run_id} is {run.state}, not held")
    return run
