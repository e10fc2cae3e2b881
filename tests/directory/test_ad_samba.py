"""The `ad` flavor against a real AD-compatible directory: Samba's AD DC (tests/support/samba.py).

objectGUID as the stable key, uSNChanged for incremental runs, userAccountControl's 0x2 as disabled,
LDAP_MATCHING_RULE_IN_CHAIN for nested groups, `member` in ranges over 1,500 values, built-in groups left out.
"""

import dataclasses
import uuid

import ldap3
import pytest

from connectors.ldap import read_directory
from service import bootstrap
from service.directory import sync as ldapsync
from tests.support.factories import rows
from tests.support.samba import ADMIN_DN, ADMIN_PW, BASE, BIG, BULK, DISABLED, STAFF, URL


@pytest.fixture(scope="module")
def staff(samba_dc):
    """ann (manager of bob), bob, cid (disabled), eve (changed by the incremental test); vpn-users ⊃ engineers."""
    with samba_dc.connection() as conn:
        ann = samba_dc.add_user(conn, "ann", mail="ann@corp.local", givenName="Ann", sn="Arbor",
                                employeeID="E100", department="Finance", title="Controller")
        bob = samba_dc.add_user(conn, "bob", mail="bob@eng.internal", employeeID="E200", department="Eng",
                                manager=ann)
        cid = samba_dc.add_user(conn, "cid", mail="cid@corp.local", disabled=True)
        eve = samba_dc.add_user(conn, "eve", mail="eve@corp.local", title="Intern")
        engineers = samba_dc.add_group(conn, "engineers", [bob, cid])
        samba_dc.add_group(conn, "vpn-users", [ann, engineers])
    return {"ann": ann, "bob": bob, "cid": cid, "eve": eve}


def ad_settings(settings, **changes):
    return dataclasses.replace(settings, **{
        "ldap_url": (URL,), "ldap_flavor": "ad", "ldap_bind_dn": ADMIN_DN, "ldap_bind_password": ADMIN_PW,
        "ldap_user_base": STAFF, "ldap_group_base": BASE, "ldap_allow_plaintext": True, "ldap_page_size": 100,
        **changes})


@pytest.fixture
def sync(settings, database):
    built = []

    def run(full=True, **changes):
        if not built:
            built.append(bootstrap.build(ad_settings(settings, **changes), database))
        return ldapsync.run_sync(built[0], full=full)
    yield run
    for services in built:
        services.close()


def people(database) -> dict:
    found = rows(database, "SELECT user_name, active, primary_email, employee_number, department, title, "
                           "manager_id, id, (SELECT external_id FROM person_external_ids x "
                           "WHERE x.person_id = people.id AND x.source = 'ldap') FROM people")
    return {r[0]: r[1:] for r in found}


def groups(database) -> dict:
    found = rows(database, "SELECT g.display_name, coalesce(array_agg(p.user_name ORDER BY p.user_name) "
                           "FILTER (WHERE p.user_name IS NOT NULL), '{}') FROM groups g "
                           "LEFT JOIN group_members m ON m.group_id = g.id LEFT JOIN people p ON p.id = m.person_id "
                           "GROUP BY 1")
    return dict(found)


def test_full_sync_keys_by_object_guid_disables_by_the_bit_and_resolves_nesting_in_chain(
        samba_dc, staff, sync, database):
    result = sync()
    assert result.state == "applied", (result.state, result.message)
    found = people(database)
    assert {"ann", "bob", "cid", "eve"} <= set(found) and "Administrator" not in found  # user base: OU=Staff
    guid = samba_dc.read(staff["ann"], "objectGUID")["objectGUID"][0]
    active, email, number, department, title, _, ann_id, key = found["ann"]
    assert (active, email, number, department, title) == (True, "ann@corp.local", "E100", "Finance", "Controller")
    assert key == str(uuid.UUID(bytes_le=guid))  # the stable key, in GUID text form
    assert found["bob"][:4] == (True, "bob@eng.internal", "E200", "Eng") and found["bob"][5] == ann_id
    assert found["cid"][0] is False  # userAccountControl 0x222: ACCOUNTDISABLE set
    assert samba_dc.read(staff["cid"], "userAccountControl")["userAccountControl"][0] == str(DISABLED).encode()
    by_group = groups(database)
    assert by_group["vpn-users"] == ["ann", "bob", "cid"]  # bob and cid through engineers (IN_CHAIN)
    assert by_group["engineers"] == ["bob", "cid"]
    assert not {"Domain Admins", "Domain Users", "Administrators", "Enterprise Admins"} & set(by_group)


def test_built_in_groups_come_along_only_when_asked(samba_dc, staff, sync, database):
    result = sync(ldap_builtin_groups=True)
    assert result.state == "applied", (result.state, result.message)
    names = set(groups(database))
    assert {"Domain Admins", "Domain Users", "Administrators", "vpn-users"} <= names


def test_incremental_runs_follow_usn_changed(samba_dc, staff, sync, database):
    first = sync()
    assert first.state == "applied"
    mark = rows(database, "SELECT high_water FROM sync_runs WHERE state = 'applied' ORDER BY started_at")[-1][0]
    assert mark.isdigit()
    with samba_dc.connection() as conn:
        usn = int(samba_dc.read(staff["eve"], "uSNChanged")["uSNChanged"][0])
        conn.modify(staff["eve"], {"title": [(ldap3.MODIFY_REPLACE, ["Analyst"])]})
        assert int(samba_dc.read(staff["eve"], "uSNChanged")["uSNChanged"][0]) > usn
    result = sync(full=False)
    assert result.state == "applied" and result.counts["people_read"] <= 2  # eve, and the entry at the mark
    assert people(database)["eve"][4] == "Analyst"
    later = rows(database, "SELECT high_water FROM sync_runs WHERE state = 'applied' ORDER BY started_at")[-1][0]
    assert int(later) > int(mark)
    with samba_dc.connection() as conn:  # eve again as the module found her
        conn.modify(staff["eve"], {"title": [(ldap3.MODIFY_REPLACE, ["Intern"])]})


def test_a_group_over_1500_members_is_read_through_every_range(samba_dc, samba_big_group, sync, database, settings):
    config = ldapsync.ldap_config(ad_settings(settings, ldap_user_base=BULK, ldap_group_base=BULK))
    snapshot = read_directory(config)
    [big] = snapshot.groups
    assert len(big.member_dns) == BIG and len(set(big.member_dns)) == BIG
    result = sync(ldap_user_base=BULK, ldap_group_base=BULK)
    assert result.state == "applied" and result.counts["created"] == BIG
    assert len(groups(database)["big"]) == BIG
    assert rows(database, "SELECT count(*) FROM people WHERE primary_email LIKE '%%@corp.local'") == [(BIG,)]


def test_groups_base_alone_still_leaves_built_ins_out(samba_dc, staff, sync, database):
    result = sync(ldap_group_base=f"CN=Users,{BASE}")  # Domain Admins & co. live here
    assert result.state == "applied", (result.state, result.message)
    assert set(groups(database)) == set()
