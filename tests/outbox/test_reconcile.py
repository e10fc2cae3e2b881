"""Reconciliation against the real targets: drift fixed and journaled; drift over the guard held for an admin's
WebAuthn-bound confirmation, while a leaver's revocation in the same run still goes out."""

import dataclasses

import psycopg
import pytest

from service.access import store as grant_store
from service.app import create_app
from service.outbox.reconcile import plan, reconcile_job
from tests.support.admin import ORIGIN, enroll, step_up
from tests.support.factories import add_grant, add_person, rows
from tests.support.ldapserver import ROOT_DN, ROOT_PW, group_dn, group_ldif, user_dn
from tests.support.outbox import outbox_services
from tests.support.scimtool import TOKEN, ScimTool
from tests.support.softauthn import SoftAuthenticator

LOOSE = {"max_deactivation_share": 0.5, "max_deactivations": 5}
TIGHT = {"max_deactivation_share": 0.1, "max_deactivations": 2}


def ldap_target(ldap):
    return {"key": "vpn-group", "type": "ldap_group", "resource": "vpn", "url": ldap.url,
            "group_dn": group_dn("vpn-users"), "bind_dn": ROOT_DN, "password_env": "VPN_GROUP_PW",
            "dn_template": "uid={user_name},ou=people,dc=example,dc=com"}


def group_members(ldap) -> list[str]:
    found = []
    for i in range(1, 21):
        if ldap.dns(f"(&(cn=vpn-users)(member={user_dn(i)}))"):
            found.append(f"user{i:03d}")
    return found


def granted(database, *numbers):
    for i in numbers:
        add_grant(database, add_person(database, f"user{i:03d}"), "vpn")


def reconciled(database):
    return rows(database, "SELECT detail->>'op', detail->>'member' FROM journal WHERE kind = 'outbound' "
                          "AND outcome = 'reconciled' ORDER BY seq")


def test_the_plan_leaves_pending_and_unknown_accounts_alone():
    drift = plan(expected={"a": "1", "b": "2", "c": "3"}, holders={"a", "x", "y", "svc"}, pending={"y", "c"},
                 governed={"a": "1", "b": "2", "c": "3", "x": "9", "y": "8"}, accounts={"a", "b", "x", "y", "svc"})
    assert (drift.removals, drift.additions, drift.holders) == ({"x": "9"}, {"b": "2"}, 4)


def test_a_member_added_by_hand_is_removed_and_a_lost_one_added_back(ldap, settings, database, monkeypatch):
    monkeypatch.setenv("VPN_GROUP_PW", ROOT_PW)
    ldap.add(group_ldif("vpn-users", [user_dn(5), user_dn(6), user_dn(7)]))
    services = outbox_services(settings, database, [], guard=LOOSE)
    services.close()
    granted(database, 5, 7, 8)  # before the target exists: no outbox rows; user008 is not in the group
    services = outbox_services(settings, database, [ldap_target(ldap)], guard=LOOSE)
    try:
        counts = reconcile_job(services)
        assert counts["reconciled"] == 2
        assert group_members(ldap) == ["user005", "user007", "user008"]
        assert reconciled(database) == [("disable", user_dn(6).lower()), ("enable", user_dn(8).lower())]
        assert reconcile_job(services)["reconciled"] == 0  # nothing drifts now
    finally:
        services.close()
    (subject,), = rows(database, "SELECT subject FROM journal WHERE outcome = 'reconciled' AND detail->>'op' = "
                                 "'enable'")
    assert subject == rows(database, "SELECT id::text FROM people WHERE user_name = 'user008'")[0][0]


@pytest.fixture
def held_world(ldap, settings, database, monkeypatch):
    """user001..user006 granted and members; user010..user014 added by hand (5 > the guard's 2); user001 leaves."""
    monkeypatch.setenv("VPN_GROUP_PW", ROOT_PW)
    ldap.add(group_ldif("vpn-users", [user_dn(i) for i in (*range(1, 7), *range(10, 15))]))
    outbox_services(settings, database, [], guard=TIGHT).close()
    granted(database, *range(1, 7))
    services = outbox_services(dataclasses.replace(settings, base_url=ORIGIN), database, [ldap_target(ldap)],
                               guard=TIGHT)
    with psycopg.connect(database.app_url) as conn:
        grant_store.revoke(conn, "user001", "vpn", reason="leaver")
    yield services
    services.close()


def test_drift_over_the_guard_is_held_while_a_leaver_goes_out_then_confirmed(held_world, ldap, database):
    services = held_world
    counts = reconcile_job(services)
    assert (counts["outbox_confirmed"], counts["held"]) == (1, 1)
    assert group_members(ldap) == [f"user{i:03d}" for i in (*range(2, 7), *range(10, 15))]  # user001 is out
    (run_id, state, plan_), = rows(database, "SELECT id, state, plan FROM outbound_reconciliations")
    assert state == "held" and sorted(plan_["removals"]) == [user_dn(i).lower() for i in range(10, 15)]
    assert rows(database, "SELECT outcome, detail->>'removals' FROM journal WHERE kind = 'outbound' "
                          "AND outcome LIKE 'reconcile%%'") == [("reconcile_held", "5")]
    assert reconcile_job(services)["held"] == 1 and reconciled(database) == []  # held until an admin decides

    web = create_app(services=services).test_client()
    key = SoftAuthenticator()
    assert enroll(web, database, key).status_code == 200
    page = web.get("/admin/outbox").get_data(as_text=True)
    assert f'data-action="outbox.reconcile_confirm" data-run="{run_id}"' in page
    r, _, _ = step_up(web, key, "outbox.reconcile_confirm", {"run": str(run_id)})
    assert r.status_code == 200 and r.json["state"] == "confirmed"
    assert group_members(ldap) == [f"user{i:03d}" for i in (*range(2, 7), *range(10, 15))]  # not in the request
    assert reconcile_job(services)["reconciled"] == 5
    assert group_members(ldap) == [f"user{i:03d}" for i in range(2, 7)]
    assert rows(database, "SELECT state, decided_by FROM outbound_reconciliations") == [
        ("applied", "admin:ada@example.com")]
    assert rows(database, "SELECT detail->>'action', (detail->>'run')::bigint FROM journal WHERE kind = 'admin' "
                          "AND detail->>'action' LIKE 'outbox.%%'") == [("outbox.reconcile_confirm", run_id)]
    r, _, _ = step_up(web, key, "outbox.reconcile_discard", {"run": str(run_id)})
    assert r.status_code == 409


def test_a_held_run_discarded_changes_nothing(held_world, ldap, database):
    services = held_world
    reconcile_job(services)
    (run_id,), = rows(database, "SELECT id FROM outbound_reconciliations")
    web = create_app(services=services).test_client()
    key = SoftAuthenticator()
    assert enroll(web, database, key).status_code == 200
    r, _, _ = step_up(web, key, "outbox.reconcile_confirm", {"run": str(run_id)},
                      use_action="outbox.reconcile_discard")
    assert r.status_code == 403  # an assertion for confirming is no discard (nor the other way round)
    r, _, _ = step_up(web, key, "outbox.reconcile_discard", {"run": str(run_id)})
    assert r.status_code == 200
    assert rows(database, "SELECT state FROM outbound_reconciliations") == [("discarded",)]
    reconcile_job(services)  # the next run finds the same drift, and holds it again
    assert rows(database, "SELECT state FROM outbound_reconciliations ORDER BY id") == [("discarded",), ("held",)]
    assert len(group_members(ldap)) == 10 and reconciled(database) == []


def test_scim_reconciliation_touches_only_people_gatehouse_knows(settings, database, monkeypatch):
    monkeypatch.setenv("GH_SCIM_TOKEN", TOKEN)
    tool = ScimTool().start()
    try:
        kim, lee, svc = tool.add_user("kim", active=False), tool.add_user("lee"), tool.add_user("deploy-bot")
        outbox_services(settings, database, [], guard=LOOSE).close()
        add_grant(database, add_person(database, "kim"), "github")  # granted, but inactive in the tool
        add_person(database, "lee")  # known, no grant, active in the tool
        add_person(database, "mo")  # granted, no account in the tool: nothing to re-add
        add_grant(database, rows(database, "SELECT id::text FROM people WHERE user_name = 'mo'")[0][0], "github")
        services = outbox_services(settings, database, [{"key": "gh-scim", "type": "scim", "resource": "github",
                                                         "url": tool.url, "token_env": "GH_SCIM_TOKEN"}],
                                   guard=LOOSE)
        try:
            assert reconcile_job(services)["reconciled"] == 2
        finally:
            services.close()
        assert (tool.user(kim)["active"], tool.user(lee)["active"], tool.user(svc)["active"]) == (True, False, True)
    finally:
        tool.stop()
    assert reconciled(database) == [("disable", "lee"), ("enable", "kim")]
