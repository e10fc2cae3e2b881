"""Reconciliation: who has access at a target (SCIM users or group members, LDAP group members) against who
should (active grants on the target's resource), drift fixed and each fix journaled.

Removals are the unexpected holders (a member added by hand, an account re-enabled in the tool); additions are
people with an active grant who lost access there (a restored grant whose delivery was discarded). People with
an unfinished outbox row at the target are left to the outbox, so a leaver's revocation never waits for an
admin. At a SCIM tool only accounts of people Gatehouse knows are touched (service accounts are the tool's), and
access is re-added only to accounts the tool has. Removals over the policy's [guard] (the LDAP sync's rule) look
like a glitch of the source, not a decision: the run is held for an admin's WebAuthn-bound confirmation, and a
confirmed run is applied exactly as held by the next job run. Calls to the target happen here, in the worker,
outside any transaction.
"""

import dataclasses

from connectors.outbound import DISABLE, ENABLE, Account, DeliveryError
from policies import Target as TargetPolicy
from policies.rules import over_guard
from service import db, journal
from service.errors import Conflict, NotFound
from service.outbox import delivery, store

ACTOR = "job:outbox_reconcile"
RECONCILABLE = ("scim", "ldap_group")


@dataclasses.dataclass(frozen=True)
class Drift:
    """What a target should change: keys to remove and to add (key → person id or '' for nobody we know)."""

    removals: dict[str, str]
    additions: dict[str, str]
    holders: int


def plan(*, expected: dict[str, str], holders: set[str], pending: set[str], governed: dict[str, str] | None,
         accounts: set[str] | None) -> Drift:
    """The drift, decided without I/O. `governed`: keys of everyone Gatehouse knows (None: every holder counts)."""
    removals = {k: (governed or {}).get(k, "") for k in holders - expected.keys() - pending
                if governed is None or k in governed}
    additions = {k: expected[k] for k in expected.keys() - holders - pending if accounts is None or k in accounts}
    return Drift(removals, additions, len(holders))


def reconcile_job(services) -> dict:
    """The worker's outbox_reconcile job: deliver what is due first (leavers go out whatever happens next), then
    reconcile each SCIM and LDAP group target."""
    counts = {f"outbox_{k}": v for k, v in delivery.deliver_due(services).items()}
    with db.connect(services.database.app_url, timeout=services.settings.db_timeout, autocommit=True) as conn:
        for policy in services.policy.targets:
            if policy.type in RECONCILABLE:
                for k, v in reconcile(conn, services, policy).items():
                    counts[k] = counts.get(k, 0) + v
    return counts


def reconcile(conn, services, policy: TargetPolicy) -> dict:
    """One target: apply a confirmed run, wait on a held one, or find the drift and fix it (or hold it)."""
    with conn.transaction():
        open_run = store.open_reconciliation(conn, policy.key)
    if open_run is not None and open_run.state == "held":
        return {"held": 1}
    try:
        target = delivery.build(policy)
        if open_run is not None:
            removals, additions = open_run.plan["removals"], open_run.plan["additions"]
        else:
            drift = _drift(conn, target, policy)
            removals, additions = drift.removals, drift.additions
            if over_guard(services.policy.guard, len(removals), drift.holders):
                _hold(conn, policy, drift, services.policy.guard)
                return {"held": 1}
        fixed = _fix(conn, target, policy, DISABLE, removals) + _fix(conn, target, policy, ENABLE, additions)
    except DeliveryError as e:
        with conn.transaction():
            journal.append(conn, journal.Event(kind="outbound", outcome="reconcile_failed", actor=ACTOR,
                                               detail={"target": policy.key, "error": e.message}))
        return {"reconcile_failed": 1}
    if open_run is not None:
        with conn.transaction():
            store.finish_reconciliation(conn, open_run.id)
    return {"reconciled": fixed}


def _drift(conn, target, policy: TargetPolicy) -> Drift:
    with conn.transaction():
        wanted = store.expected_holders(conn, policy.resource)
        pending_people = store.pending_people(conn, policy.key)
        people = store.people_names(conn) if policy.type == "scim" else None
    expected, pending = {}, set()
    for person_id, user_name, dn in wanted:
        try:
            expected[target.key_of(Account(person_id, user_name, dn=dn))] = person_id
        except DeliveryError:
            continue  # no DN and no template: the outbox row for them says so
    for person_id, user_name, dn in pending_people:
        try:
            pending.add(target.key_of(Account(person_id, user_name, dn=dn)))
        except DeliveryError:
            continue
    governed = {name.lower(): pid for pid, name in people} if people is not None else None
    holders = target.holders()
    return plan(expected=expected, holders=set(holders), pending=pending, governed=governed,
                accounts=target.accounts())


def _hold(conn, policy: TargetPolicy, drift: Drift, guard) -> None:
    reason = (f"would remove {len(drift.removals)} of {drift.holders} holders at {policy.key}; the guard allows "
              f"at most {guard.max_deactivation_share:.0%} or {guard.max_deactivations}. Nothing was changed: "
              "confirm or discard this reconciliation.")
    with conn.transaction():
        run_id = store.hold_reconciliation(conn, policy.key, {"removals": drift.removals,
                                                              "additions": drift.additions}, reason)
        journal.append(conn, journal.Event(kind="outbound", outcome="reconcile_held", actor=ACTOR, detail={
            "target": policy.key, "run": run_id, "removals": len(drift.removals),
            "additions": len(drift.additions), "holders": drift.holders, "reason": reason}))


def _fix(conn, target, policy: TargetPolicy, op: str, keys: dict[str, str]) -> int:
    """Apply and verify one fix per key; each journaled (kind outbound, outcome reconciled) with its answer."""
    holders = target.holders() if op == DISABLE and keys else {}
    with conn.transaction():
        known = store.accounts_by_id(conn, [pid for pid in keys.values() if pid])
    done = 0
    for key, person_id in sorted(keys.items()):
        if person_id in known:
            user_name, email, dn = known[person_id]
            account = Account(person_id, user_name, email=email, dn=dn)
        else:
            account = holders.get(key) or Account(person_id, key)
        account = dataclasses.replace(account, person_id=person_id, resource=policy.resource, cause="reconcile")
        answer = target.apply(op, account, idempotency_key=f"reconcile:{policy.key}:{op}:{key}")
        if target.verify(op, account) is None:
            raise DeliveryError(f"reconcile {op} {key}: a re-read still shows the access as it was")
        with conn.transaction():
            journal.append(conn, journal.Event(
                kind="outbound", outcome="reconciled", actor=ACTOR, subject=person_id or None,
                resource=policy.resource, reasons=({"code": "drift", "text": "unexpected access removed"
                                                    if op == DISABLE else "missing access restored"},),
                detail={"target": policy.key, "op": op, "member": key, "answer": answer.detail}))
        done += 1
    return done


def decide(conn, run_id: int, *, confirm: bool, actor: str):
    """An admin's decision on a held run (in the caller's transaction): confirmed runs are applied by the job."""
    run = store.reconciliation(conn, run_id)
    if run is None:
        raise NotFound(f"no reconciliation run {run_id}")
    if run.state != "held":
        raise Conflict(f"reconciliation run {run_id} is {run.state}, not held")
    store.decide_reconciliation(conn, run_id, "confirmed" if confirm else "discarded", actor)
    journal.append(conn, journal.Event(kind="outbound", outcome="reconcile_confirmed" if confirm else
                                       "reconcile_discarded", actor=actor,
                                       detail={"target": run.target, "run": run_id}))
    return store.reconciliation(conn, run_id)
