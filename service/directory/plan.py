"""The LDAP sync's decision: a read and what Gatehouse has in, the plan (what to change) out; no I/O.

Rules: an entry is matched to a person by its stable key, else (a returning
entry) by the userName of a deleted LDAP person, else (a person SCIM pushed
first) by the configured join key, else created. An entry that would give its
person a userName, employee number or (live) primary e-mail another person
holds is a conflict and is not written. LDAP sets the attributes it owns or
that are blank; another source's values stay. Disabled in the directory always
deactivates; only a complete read removes anyone.
"""

import dataclasses
import functools
import re
import uuid
from collections import defaultdict

from connectors.directory import LdapPerson, Snapshot, normalize_dn
from policies import Guard
from policies.rules import over_guard
from service.identity.model import FIELDS, primary_email

LDAP, LDAP_DN = "ldap", "ldap:dn"  # person_external_ids sources: the stable key, the normalized DN
ATTRS = ("user_name", "given_name", "family_name", "display_name", "emails", "employee_number", "department", "title")
_OWNED = {**{a: (a,) for a in ATTRS}, "manager": ("manager_id", "manager_ref")}  # source field → columns
_COLUMNS = (*ATTRS, "manager_id", "manager_ref")
_ALL_FROM_LDAP = {f: LDAP for f in FIELDS}
_SPACE = re.compile(r"\s")


# --- what Gatehouse has, as the store loads it -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Current:
    """A person as Gatehouse has them: values by column, attribute sources, LDAP key and normalized DN."""

    id: str
    version: int
    values: dict
    sources: dict
    deleted: bool
    key: str | None
    dn: str | None
    shared: bool  # known to another source too: leaving LDAP deactivates them, never deletes
    external_ids: tuple = ()
    name_key: str | None = None  # login_key(userName), the one key names compare by (sql/013)
    login: str | None = None  # the login LDAP gave them (person_logins under "ldap"; sql/018), kept through joins


@dataclasses.dataclass(frozen=True)
class CurrentGroup:
    id: str
    key: str
    name: str
    members: frozenset


@dataclasses.dataclass
class Loaded:
    """What Gatehouse has that a read may touch."""

    known: dict  # LDAP key → Current (deleted people too, so a returning entry is revived)
    candidates: list  # live people of other sources the join key may match, oldest first
    pending: list  # people waiting for a manager whose DN this read names
    names: dict  # login key → person id, for every login (userName, uid, ...) a read's names have
    numbers: dict  # employee number → person id
    dns: dict  # normalized DN → id of a live LDAP person
    groups: dict  # LDAP key → CurrentGroup
    other_group_names: set  # lower(displayName) of groups from other sources
    total: int  # live people from LDAP
    emails: dict = dataclasses.field(default_factory=dict)  # lower(primary e-mail) → id of the live person with it
    keys: dict = dataclasses.field(default_factory=dict)  # each uid the read has → its login key (computed by SQL)


@functools.lru_cache(maxsize=1 << 18)
def norm(dn: str) -> str:
    """normalize_dn, fast for the usual DN without spaces (its regex costs ~20 µs a DN; a sync makes 5 a person)."""
    return normalize_dn(dn) if _SPACE.search(dn) else dn.lower()


# --- decide: plain values in, a plan out ------------------------------------------------------


@dataclasses.dataclass
class Plan:
    """What a run changes; JSON-serializable, so a held run is stored and later applied as is."""

    kind: str
    total: int = 0  # people from LDAP the guard's share is of
    high_water: str | None = None
    people: list = dataclasses.field(default_factory=list)  # {op, id, version, dn, values, links, changes, leaver}
    removals: list = dataclasses.field(default_factory=list)  # {id, version, dn, user_name, unlink, leaver}
    groups: list = dataclasses.field(default_factory=list)  # {op, id, key, name, old}
    # {"add": [[group ids], [person ids]], "remove": ...}: parallel lists, one pair a membership
    members: dict = dataclasses.field(default_factory=lambda: {"add": [[], []], "remove": [[], []]})
    conflicts: list = dataclasses.field(default_factory=list)  # {dn, reason}

    def deactivations(self) -> list[dict]:
        return [p for p in self.people if p["leaver"]] + [r for r in self.removals if r["leaver"]]

    def counts(self) -> dict:
        ops: defaultdict[str, int] = defaultdict(int)
        for p in self.people:
            ops["disabled" if p["leaver"] else p["op"]] += 1
        return {"created": ops["create"], "joined": ops["join"], "updated": ops["update"] + ops["groups"],
                "revived": ops["revive"], "disabled": ops["disabled"], "removed": len(self.removals),
                "groups_changed": len(self.groups), "members_added": len(self.members["add"][1]),
                "members_removed": len(self.members["remove"][1]), "conflicts": len(self.conflicts)}


def refusal(snapshot: Snapshot, loaded: Loaded, *, groups_configured: bool) -> tuple[str, str] | None:
    """Why a read must change nothing (code, text), or None: an empty answer where there were people or groups."""
    if snapshot.complete and not snapshot.people and loaded.total:
        return "empty_read", (f"the directory returned no people but Gatehouse has {loaded.total} from it: the base, "
                              "the filter or the bind account's rights are wrong; nothing was changed")
    if groups_configured and not snapshot.groups and loaded.groups:
        return "no_groups", (f"the directory returned no groups but Gatehouse has {len(loaded.groups)} from it: "
                             "the bind account may see nothing; nothing was changed")
    return None


def hold_reason(p: Plan, *, share: float, count: int) -> str | None:
    """A message when the plan deactivates more than `share` of the people from LDAP or more than `count`."""
    out = p.deactivations()
    if not over_guard(Guard(share, count), len(out), p.total):
        return None
    names = ", ".join(sorted(d.get("user_name") or d["dn"] for d in out)[:10]) + (", ..." if len(out) > 10 else "")
    disabled = sum(e["leaver"] for e in p.people)
    return (f"would deactivate {len(out)} of {p.total} people from LDAP ({len(out) / max(p.total, 1):.0%}): "
            f"{disabled} disabled, {len(out) - disabled} removed ({names}); the guard allows at most {share:.0%} "
            f"or {count}. Nothing was applied: confirm or discard this run.")


def plan(snapshot: Snapshot, loaded: Loaded, *, join_key: str, full: bool) -> Plan:
    """The changes that make Gatehouse match this read; a partial (incremental) read never removes anyone."""
    out = Plan(kind="full" if full else "incremental", total=max(loaded.total, len(snapshot.people)),
               high_water=snapshot.high_water)
    targets = _identify(snapshot.people, loaded, join_key, out)
    seen = {lp.key for lp in snapshot.people}
    removed = [c for c in loaded.known.values() if full and not c.deleted and c.key not in seen]
    dns = _dn_index(loaded.dns, targets, removed)
    entries = {}
    for lp, op, cur, pid in targets:
        entry = _person_entry(lp, op, cur, pid, dns)
        if entry:
            entries[pid] = entry
    targeted = {pid for *_, pid in targets}
    for cur in loaded.pending:
        if cur.id not in targeted and (entry := _adopt(cur, dns)):
            entries[cur.id] = entry
    out.removals = [{"id": c.id, "version": c.version, "dn": c.dn, "user_name": c.values["user_name"],
                     "unlink": c.shared, "leaver": c.values["active"], "changes": {}} for c in removed]
    deltas = _plan_groups(snapshot.groups, loaded, dns, full, out)
    by_id = {**{r["id"]: r for r in out.removals}, **entries}
    dn_of = {pid: dn for dn, pid in loaded.dns.items()} if deltas.keys() - by_id.keys() else {}
    for pid, delta in deltas.items():
        entry = by_id.get(pid) or entries.setdefault(pid, {"op": "groups", "id": pid, "version": None,
                                                            "dn": dn_of.get(pid), "values": None, "links": {},
                                                            "changes": {}, "leaver": False})
        entry["changes"]["groups"] = delta
    out.people = list(entries.values())
    return out


def _identify(people_read, loaded: Loaded, join_key: str, out: Plan) -> list[tuple]:
    """(entry, op, current, person id) for each entry; entries that collide with someone else become conflicts."""
    by_join: dict[str, Current] = {}
    for c in loaded.candidates:  # oldest first: the first person with a value is the one joined
        for value in _join_values_of(c, join_key):
            by_join.setdefault(value, c)
    returning = {c.name_key: c for c in loaded.known.values() if c.deleted and not c.shared}
    taken = {"userName": dict(loaded.names), "employeeNumber": dict(loaded.numbers), "e-mail": dict(loaded.emails)}
    used, targets = set(), []
    for lp in people_read:
        cur = loaded.known.get(lp.key)
        op = "revive" if cur and cur.deleted else "update"
        if cur is None:
            cur, op = returning.get(loaded.keys[lp.user_name]), "revive"
        if cur is None:
            cur, op = by_join.get(_join_value(lp, join_key)), "join"
        pid = cur.id if cur else str(uuid.uuid4())
        email = _email_after(lp, cur)
        # The uid is the person's LDAP login whoever sets their userName: no one else may have its key.
        claims = {"userName": (loaded.keys[lp.user_name], lp.user_name), "employeeNumber": (lp.employee_number,) * 2,
                  "e-mail": (email.lower() if email else None, email)}
        problem = "another entry matches the same person" if pid in used else _taken(taken, claims, pid)
        if problem:  # the entry is skipped whole: nothing of it is written, and it claims nothing
            out.conflicts.append({"dn": lp.dn, "reason": problem})
            continue
        for what, (key, _) in claims.items():
            if key:
                taken[what][key] = pid
        used.add(pid)
        targets.append((lp, op if cur else "create", cur, pid))
    return targets


def _taken(taken: dict, claims: dict, pid: str) -> str | None:
    """Why a value this entry would write belongs to another person (as loaded, or claimed earlier in this run)."""
    for what, (key, shown) in claims.items():
        if key and taken[what].get(key, pid) != pid:
            return f"{'primary e-mail' if what == 'e-mail' else what} {shown!r} belongs to another person"
    return None


def _email_after(lp: LdapPerson, cur: Current | None) -> str | None:
    """The primary e-mail the person has once this entry is written (as _merge: LDAP sets emails it owns or blank)."""
    if cur is not None and cur.values["emails"] and cur.sources.get("emails", LDAP) != LDAP:
        return primary_email(cur.values["emails"])
    return lp.email


def _join_value(lp: LdapPerson, join_key: str):
    return {"email": (lp.email or "").lower() or None, "employeeNumber": lp.employee_number,
            "externalId": lp.key}[join_key]


def _join_values_of(c: Current, join_key: str) -> list:
    if join_key == "externalId":
        return list(c.external_ids)
    value = c.values["employee_number"] if join_key == "employeeNumber" else primary_email(c.values["emails"])
    return [value.lower() if join_key == "email" else value] if value else []


def _dn_index(dns: dict, targets: list, removed: list) -> dict:
    """Normalized DN → person id after this run: moved entries under their new DN, removed people gone."""
    index = dict(dns)
    for cur in removed:
        index.pop(cur.dn, None)
    for _, _, cur, pid in targets:
        if cur and cur.dn and index.get(cur.dn) == pid:
            del index[cur.dn]
    index.update((norm(lp.dn), pid) for lp, _, _, pid in targets)
    return index


def _wanted(lp: LdapPerson, pid: str, dns: dict) -> dict:
    manager_dn = norm(lp.manager_dn) if lp.manager_dn else None
    manager_id = dns.get(manager_dn) if manager_dn else None
    if manager_id == pid:  # nobody manages themselves
        manager_dn = manager_id = None
    return {"user_name": lp.user_name, "given_name": lp.given_name, "family_name": lp.family_name,
            "display_name": lp.display_name, "employee_number": lp.employee_number, "department": lp.department,
            "title": lp.title, "emails": [{"value": lp.email, "type": "work", "primary": True}] if lp.email else [],
            "manager_id": manager_id, "manager_ref": None if manager_id else manager_dn}


def _merge(cur: Current | None, wanted: dict, *, disabled: bool, revive: bool) -> tuple[dict, dict]:
    """New values and attribute sources: LDAP sets what it owns or what is blank; another source's value stays."""
    if cur is None:
        return {**wanted, "active": not disabled}, _ALL_FROM_LDAP  # shared, never changed
    if not revive and all(wanted[c] == cur.values[c] for c in _COLUMNS) and cur.values["active"] != disabled:
        return cur.values, cur.sources  # the usual case on a full run: nothing changed
    values, sources = dict(cur.values), dict(cur.sources)
    for field, columns in _OWNED.items():
        old, new = tuple(values[c] for c in columns), tuple(wanted[c] for c in columns)
        if new != old and (sources.get(field, LDAP) == LDAP or not any(old)):
            values.update(zip(columns, new, strict=False))
            sources[field] = LDAP
    # Disabled in the directory always deactivates; enabled re-activates only what LDAP itself deactivated.
    active = False if disabled else (True if revive or sources.get("active", LDAP) == LDAP else values["active"])
    if active != values["active"]:
        values["active"], sources["active"] = active, LDAP
    return values, sources


def _journaled(values: dict) -> dict:
    return {f: values["manager_id"] or values["manager_ref"] if f == "manager" else values[f]
            for f in (*ATTRS, "manager", "active")}


def _person_entry(lp: LdapPerson, op: str, cur: Current | None, pid: str, dns: dict) -> dict | None:
    values, sources = _merge(cur, _wanted(lp, pid, dns), disabled=lp.disabled, revive=op == "revive")
    dn = norm(lp.dn)
    links = {LDAP: lp.key, LDAP_DN: dn}
    if cur is not None:
        links = {s: v for s, v in links.items() if v != {LDAP: cur.key, LDAP_DN: cur.dn}[s]}
    if cur is None:
        changes = {"user_name": [None, lp.user_name], "active": [None, values["active"]]}
    elif values is cur.values:
        changes = {}
    else:
        old, new = _journaled(cur.values), _journaled(values)
        changes = {f: [old[f], new[f]] for f in new if old[f] != new[f]}
    if cur is not None and cur.login != lp.user_name:  # the LDAP login, kept even where SCIM sets the userName
        changes["login"] = [cur.login, lp.user_name]
    if op == "update" and not changes and not links:
        return None
    leaver = cur is not None and not cur.deleted and cur.values["active"] and not values["active"]
    return {"op": op, "id": pid, "version": cur.version if cur else None, "dn": lp.dn, "user_name": lp.user_name,
            "values": {**values, "attribute_sources": sources}, "links": links, "changes": changes, "leaver": leaver}


def _adopt(cur: Current, dns: dict) -> dict | None:
    """A person whose pending manager reference names a DN this read resolved."""
    manager_id = dns.get(norm(cur.values["manager_ref"]))
    if not manager_id or manager_id == cur.id:
        return None
    values = {**cur.values, "manager_id": manager_id, "manager_ref": None, "attribute_sources": cur.sources}
    return {"op": "update", "id": cur.id, "version": cur.version, "dn": cur.dn, "user_name": cur.values["user_name"],
            "values": values, "links": {}, "changes": {"manager": [cur.values["manager_ref"], manager_id]},
            "leaver": False}


def _plan_groups(groups_read, loaded: Loaded, dns: dict, full: bool, out: Plan) -> dict:
    """Group and membership changes (transitive members: connectors.ldap resolves nesting); person id → delta."""
    seen = {g.key for g in groups_read}
    # A group takes only a name nobody holds now (renames never swap names within one run's UPDATE); the names
    # of groups a complete read deletes are free, as deletions are written first.
    held = {g.key: g.name.lower() for g in loaded.groups.values() if g.key in seen or not full}
    taken = set(loaded.other_group_names) | set(held.values())
    deltas: dict[str, dict] = {}
    for g in groups_read:
        cur = loaded.groups.get(g.key)
        name = g.name or g.dn.split(",", 1)[0].split("=", 1)[-1]
        if name.lower() in taken and name.lower() != held.get(g.key):
            out.conflicts.append({"dn": g.dn, "reason": f"a group named {name!r} exists"})
            continue
        taken.add(name.lower())
        gid = cur.id if cur else str(uuid.uuid4())
        if cur is None or cur.name != name:
            out.groups.append({"op": "rename" if cur else "create", "id": gid, "key": g.key, "name": name,
                               "old": cur.name if cur else None})
        members = {dns[d] for d in map(norm, g.members) if d in dns}
        before = cur.members if cur else frozenset()
        _member_changes(out, deltas, gid, name, sorted(members - before), sorted(before - members))
    for cur in loaded.groups.values() if full else ():
        if cur.key not in seen:  # gone from a complete read
            out.groups.append({"op": "delete", "id": cur.id, "key": cur.key, "name": cur.name, "old": cur.name})
            _member_changes(out, deltas, cur.id, cur.name, [], sorted(cur.members))
    return deltas


def _member_changes(out: Plan, deltas: dict, gid: str, name: str, added: list, removed: list) -> None:
    for verb, past, ids in (("add", "added", added), ("remove", "removed", removed)):
        groups, persons = out.members[verb]
        groups += [gid] * len(ids)
        persons += ids
        for pid in ids:
            delta = deltas.get(pid)
            if delta is None:
                delta = deltas[pid] = {"added": [], "removed": []}
            delta[past].append(name)
