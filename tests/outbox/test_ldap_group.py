"""A revocation removes the person's DN from the configured group of the real slapd; a restoration adds it back."""

import psycopg

from service.access import store as grant_store
from service.outbox.delivery import deliver_due
from tests.support.factories import add_grant, add_person, rows
from tests.support.ldapserver import ROOT_DN, ROOT_PW, group_dn, group_ldif, user_dn


def target(ldap, **more):
    return {"key": "vpn-group", "type": "ldap_group", "resource": "vpn", "url": ldap.url,
            "group_dn": group_dn("vpn-users"), "bind_dn": ROOT_DN, "password_env": "VPN_GROUP_PW",
            "dn_template": "uid={user_name},ou=people,dc=example,dc=com", **more}


def members(ldap):
    return sorted(ldap.dns(f"(&(cn=vpn-users)(member={user_dn(5)}))"))


def test_revocation_removes_the_member_and_restoration_adds_it_back(ldap, database, make_services, monkeypatch):
    monkeypatch.setenv("VPN_GROUP_PW", ROOT_PW)
    ldap.add(group_ldif("vpn-users", [user_dn(5), user_dn(6)]))
    services = make_services([target(ldap)])
    person = add_person(database, "user005")
    add_grant(database, person, "vpn")
    assert deliver_due(services)["confirmed"] == 1  # already a member: "already there" is a success
    with psycopg.connect(database.app_url) as conn:
        grant_store.revoke(conn, "user005", "vpn", reason="leaver")
    assert deliver_due(services)["confirmed"] == 1
    assert members(ldap) == []
    assert ldap.dns(f"(&(cn=vpn-users)(member={user_dn(6)}))") == [group_dn("vpn-users")]  # only theirs
    with psycopg.connect(database.app_url) as conn:
        grant_store.grant(conn, "user005", "vpn", by="admin:ada")
    deliver_due(services)
    assert members(ldap) == [group_dn("vpn-users")]
    assert rows(database, "SELECT op, state FROM outbox ORDER BY id") == [
        ("enable", "confirmed"), ("disable", "confirmed"), ("enable", "confirmed")]
    assert rows(database, "SELECT detail->'answer'->>'ldap' FROM journal WHERE kind = 'outbound' "
                          "AND outcome = 'sent' ORDER BY seq") == [("already",), ("modified",), ("modified",)]


def test_a_removal_already_done_by_hand_is_a_success(ldap, database, make_services, monkeypatch):
    monkeypatch.setenv("VPN_GROUP_PW", ROOT_PW)
    ldap.add(group_ldif("vpn-users", [user_dn(6)]))
    services = make_services([target(ldap)])
    person = add_person(database, "user005")
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO grants (person_id, resource_id, state, reason, granted_by) SELECT %s, id, "
                     "'suspended', 'x', 'test' FROM resources WHERE key = 'vpn'", (person,))
        conn.execute("UPDATE grants SET state = 'active', reason = NULL WHERE person_id = %s", (person,))
        conn.execute("UPDATE grants SET state = 'revoked', reason = 'y' WHERE person_id = %s", (person,))
    ldap.modify(f"dn: {group_dn('vpn-users')}\nchangetype: modify\nadd: member\nmember: {user_dn(5)}\n")
    assert deliver_due(services)["confirmed"] == 1  # the enable: already there
    ldap.modify(f"dn: {group_dn('vpn-users')}\nchangetype: modify\ndelete: member\nmember: {user_dn(5)}\n")
    assert deliver_due(services)["confirmed"] == 1
    assert rows(database, "SELECT detail->'answer'->>'ldap' FROM journal WHERE kind = 'outbound' "
                          "AND outcome = 'sent' ORDER BY seq") == [("already",), ("already",)]
