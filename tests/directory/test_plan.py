"""The LDAP sync's pure decision (service.directory.plan) on plain values: matching, attribute ownership, the guard."""

import dataclasses

from connectors.directory import LdapGroup, LdapPerson, Snapshot
from service.directory.plan import hold_reason, plan, refusal
from service.directory.store import Current, CurrentGroup, Loaded

BASE = "ou=people,dc=example,dc=com"


def entry(name: str, *, key=None, manager=None, disabled=False, email=None, title=None) -> LdapPerson:
    return LdapPerson(dn=f"uid={name},{BASE}", key=key or f"key-{name}", user_name=name, given_name=None,
                      family_name=None, display_name=None, email=email, employee_number=None, department=None,
                      title=title, manager_dn=f"uid={manager},{BASE}" if manager else None, disabled=disabled,
                      modified="20250101000000Z")


def current(name: str, pid: str, *, key=..., active=True, deleted=False, shared=False, sources=None, **values):
    base = {"user_name": name, "given_name": None, "family_name": None, "display_name": None, "emails": [],
            "employee_number": None, "department": None, "title": None, "manager_id": None, "manager_ref": None,
            "active": active}
    key = f"key-{name}" if key is ... else key
    return Current(id=pid, version=3, values={**base, **values}, sources=sources or {}, deleted=deleted, key=key,
                   dn=f"uid={name},{BASE}" if key else None, shared=shared, name_key=name.lower(), login=name)


def loaded(*people, candidates=(), groups=(), pending=()) -> Loaded:
    live = [c for c in people if not c.deleted]
    return Loaded(known={c.key: c for c in people}, candidates=list(candidates), pending=list(pending),
                  names={c.values["user_name"].lower(): c.id for c in (*people, *candidates)}, numbers={},
                  dns={c.dn: c.id for c in live}, groups={g.key: g for g in groups}, other_group_names=set(),
                  total=len(live), keys=_Keys())


class _Keys(dict):
    """login_key() as the store gives it for a read's uids; lower() stands in for it in these pure tests."""

    def __missing__(self, name):
        return name.lower()


def snapshot(*people, groups=(), complete=True) -> Snapshot:
    return Snapshot(people=tuple(people), groups=tuple(groups), complete=complete, high_water="20250101000000Z",
                    pages=1, entries_read=len(people) + len(groups))


def test_new_entries_are_created_with_their_manager_even_one_later_in_the_read():
    p = plan(snapshot(entry("ann", manager="bob"), entry("bob")), loaded(), join_key="email", full=True)
    ann, bob = p.people
    assert (ann["op"], bob["op"]) == ("create", "create")
    assert ann["values"]["manager_id"] == bob["id"] and ann["values"]["manager_ref"] is None


def test_a_manager_not_in_the_directory_is_kept_pending_by_normalized_dn():
    p = plan(snapshot(entry("ann", manager="Zed")), loaded(), join_key="email", full=True)
    assert p.people[0]["values"]["manager_ref"] == f"uid=zed,{BASE}"


def test_a_scim_value_stays_ldap_fills_blanks_and_disabled_always_deactivates():
    scim = current("ann", "p1", key=None, shared=True, title="From Okta", sources={"title": "scim:okta"},
                   emails=[{"value": "ann@example.com", "primary": True}])
    read = entry("ann", email="ann@example.com", title="From LDAP", disabled=True)
    (joined,) = plan(snapshot(read), loaded(candidates=[scim]), join_key="email", full=True).people
    assert joined["op"] == "join" and joined["values"]["title"] == "From Okta"
    assert joined["leaver"] is True and joined["values"]["active"] is False
    assert joined["links"] == {"ldap": "key-ann", "ldap:dn": f"uid=ann,{BASE}"}


def test_enabled_in_the_directory_reactivates_only_what_ldap_deactivated():
    by_ldap = current("ann", "p1", active=False, sources={"active": "ldap"})
    by_scim = current("bob", "p2", active=False, sources={"active": "scim:okta"})
    p = plan(snapshot(entry("ann"), entry("bob")), loaded(by_ldap, by_scim), join_key="email", full=True)
    assert [(e["id"], e["values"]["active"]) for e in p.people] == [("p1", True)]


def test_a_returning_entry_with_a_new_key_revives_the_deleted_person():
    gone = current("ann", "p1", active=False, deleted=True)
    (back,) = plan(snapshot(entry("ann", key="new-key")), loaded(gone), join_key="email", full=True).people
    assert (back["op"], back["id"], back["values"]["active"]) == ("revive", "p1", True)
    assert back["links"] == {"ldap": "new-key"}


def test_only_a_complete_read_removes_and_a_shared_person_is_deactivated_not_deleted():
    state = loaded(current("ann", "p1"), current("bob", "p2", shared=True), current("cy", "p3"))
    assert plan(snapshot(entry("cy"), complete=False), state, join_key="email", full=False).removals == []
    removals = plan(snapshot(entry("cy")), state, join_key="email", full=True).removals
    assert [(r["id"], r["unlink"], r["leaver"]) for r in removals] == [("p1", False, True), ("p2", True, True)]


def test_a_taken_user_name_is_a_conflict_and_the_rest_goes_on():
    other = current("ann", "p9", key=None, shared=True)
    state = loaded(candidates=[])
    state.names["ann"] = other.id
    p = plan(snapshot(entry("ann"), entry("bob")), state, join_key="email", full=True)
    assert [e["user_name"] for e in p.people] == ["bob"]
    assert p.conflicts == [{"dn": f"uid=ann,{BASE}", "reason": "userName 'ann' belongs to another person"}]


def test_names_compare_by_the_login_key_the_store_computed_not_by_lower():
    """The key is login_key() in SQL (NFKC, trimmed, case-folded); the plan never re-derives it."""
    state = loaded()
    state.keys.update({"Straße": "strasse", "zoe": "zoe"})
    state.names["strasse"] = "p9"  # someone's login STRASSE (a SCIM userName, say)
    returning = current("ＺＯＥ", "p3", deleted=True)  # left earlier; their userName's key is zoe
    state.known[returning.key] = dataclasses.replace(returning, name_key="zoe")
    p = plan(snapshot(entry("Straße"), entry("zoe", key="new-key")), state, join_key="email", full=True)
    assert p.conflicts == [{"dn": f"uid=Straße,{BASE}", "reason": "userName 'Straße' belongs to another person"}]
    assert [(e["op"], e["id"]) for e in p.people] == [("revive", "p3")]


def test_a_primary_email_another_live_person_holds_is_a_conflict_and_that_entry_is_not_written():
    state = loaded(current("ann", "p1", emails=[{"value": "ann@example.com", "primary": True}]))
    state.emails = {"ann@example.com": "p1", "okta@example.com": "p9"}  # p9: a person SCIM pushed
    read = (entry("ann", email="ann@example.com"), entry("bob", email="OKTA@example.com", manager="ann"),
            entry("cy", email="cy@example.com"), entry("dee", email="Cy@Example.com"))
    groups = (LdapGroup(dn="cn=all,ou=g", key="k1", name="all", member_dns=(),
                        members=tuple(f"uid={n},{BASE}" for n in ("ann", "bob", "cy", "dee"))),)
    p = plan(snapshot(*read, groups=groups), state, join_key="employeeNumber", full=True)
    assert p.conflicts == [
        {"dn": f"uid=bob,{BASE}", "reason": "primary e-mail 'OKTA@example.com' belongs to another person"},
        {"dn": f"uid=dee,{BASE}", "reason": "primary e-mail 'Cy@Example.com' belongs to another person"}]
    (cy,) = [e for e in p.people if e["op"] == "create"]
    assert cy["user_name"] == "cy" and {e["id"] for e in p.people} == {"p1", cy["id"]}  # ann: her new group
    assert set(p.members["add"][1]) == {"p1", cy["id"]}  # the skipped entries are in no group either


def test_a_skipped_entry_claims_nothing_and_an_email_ldap_does_not_own_is_not_claimed():
    okta = [{"value": "cy@okta.example", "primary": True}]
    state = loaded(current("cy", "p3", shared=True, sources={"emails": "scim:okta"}, emails=okta))
    state.emails = {"taken@example.com": "p9", "cy@okta.example": "p3"}
    first = dataclasses.replace(entry("ann", email="taken@example.com"), employee_number="E-1")
    later = dataclasses.replace(entry("bob"), employee_number="E-1")  # ann's number: free, as ann was skipped
    kept = entry("cy", email="taken@example.com", title="t")  # LDAP's address, but Okta's stays: nothing to claim
    p = plan(snapshot(first, later, kept), state, join_key="email", full=True)
    assert [c["dn"] for c in p.conflicts] == [f"uid=ann,{BASE}"]
    written = {e["user_name"]: e for e in p.people}
    assert set(written) == {"bob", "cy"} and written["cy"]["values"]["emails"] == okta


def test_a_deleted_persons_email_is_free_for_a_new_entry():
    gone = current("old", "p1", active=False, deleted=True, emails=[{"value": "x@example.com", "primary": True}])
    (made,) = plan(snapshot(entry("new", email="x@example.com")), loaded(gone), join_key="email", full=True).people
    assert made["op"] == "create" and made["values"]["emails"][0]["value"] == "x@example.com"


def test_transitive_members_land_in_groups_and_names_are_never_swapped_in_one_run():
    state = loaded(current("ann", "p1"), current("bob", "p2"),
                   groups=[CurrentGroup("g1", "k1", "red", frozenset({"p1"})),
                           CurrentGroup("g2", "k2", "blue", frozenset())])
    groups = (LdapGroup(dn="cn=blue,ou=g", key="k1", name="blue", member_dns=(), members=(f"uid=bob,{BASE}",)),
              LdapGroup(dn="cn=red,ou=g", key="k2", name="red", member_dns=(), members=()))
    p = plan(snapshot(entry("ann"), entry("bob"), groups=groups), state, join_key="email", full=True)
    assert [c["reason"] for c in p.conflicts] == ["a group named 'blue' exists", "a group named 'red' exists"]
    assert p.groups == [] and p.members == {"add": [[], []], "remove": [[], []]}


def test_membership_changes_are_reported_on_each_person():
    state = loaded(current("ann", "p1"), current("bob", "p2"), groups=[CurrentGroup("g1", "k1", "red",
                                                                                    frozenset({"p1"}))])
    red = LdapGroup(dn="cn=red,ou=g", key="k1", name="red", member_dns=(), members=(f"uid=bob,{BASE}",))
    p = plan(snapshot(entry("ann"), entry("bob"), groups=[red]), state, join_key="email", full=True)
    assert {e["id"]: e["changes"] for e in p.people} == {"p1": {"groups": {"added": [], "removed": ["red"]}},
                                                         "p2": {"groups": {"added": ["red"], "removed": []}}}
    assert p.members == {"add": [["g1"], ["p2"]], "remove": [["g1"], ["p1"]]}


def test_the_guard_holds_over_the_share_or_the_count_and_refuses_empty_reads():
    state = loaded(*(current(f"u{i}", f"p{i}") for i in range(20)))
    two_gone = plan(snapshot(*(entry(f"u{i}") for i in range(18))), state, join_key="email", full=True)
    assert hold_reason(two_gone, share=0.10, count=50) is None  # 2 of 20 is 10%: not more than the share
    three_gone = plan(snapshot(*(entry(f"u{i}") for i in range(17))), state, join_key="email", full=True)
    assert hold_reason(three_gone, share=0.10, count=50).startswith("would deactivate 3 of 20 people from LDAP (15%)")
    assert hold_reason(two_gone, share=0.5, count=1).startswith("would deactivate 2 of 20")
    assert refusal(snapshot(), state, groups_configured=False)[0] == "empty_read"
    assert refusal(snapshot(complete=False), state, groups_configured=False) is None
