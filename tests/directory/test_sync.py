"""LDAP sync against a real slapd (tests/support/ldapserver.py) and a real PostgreSQL: plan, guard, hold, confirm."""

import time

import psycopg
import pytest

from service import bootstrap
from service.directory import sync as ldapsync
from service.identity import people
from tests.support.admin import enroll, make_app, step_up
from tests.support.cli import db_env, gatehouse
from tests.support.factories import rows
from tests.support.ldap import COUNT, ldap_env, ldap_settings
from tests.support.ldapserver import BLIND_DN, BLIND_PW, PEOPLE, person_ldif, user_dn
from tests.support.softauthn import SoftAuthenticator

DISABLED = {f"user{i:03d}" for i in range(COUNT) if i % 7 == 3}


@pytest.fixture
def services(settings, database, ldap):
    built = bootstrap.build(ldap_settings(settings, ldap), database)
    yield built
    built.close()


def person(database, user_name):
    with psycopg.connect(database.owner_url) as conn:
        found = people.search(conn, None, {}, offset=0, limit=1000)[1]
    return next((p for p in found if p.user_name == user_name), None)


def next_second():
    """modifyTimestamp has one-second resolution: let the clock pass the last full second before a change."""
    time.sleep(1.05 - time.time() % 1)


def settle(server):
    """Make one entry the newest, a second after the rest: the high-water mark (inclusive) then re-reads only it."""
    next_second()
    server.modify(f"dn: {user_dn(119)}\nchangetype: modify\nreplace: description\ndescription: settled\n")


def test_full_sync_creates_everyone_with_managers_links_and_nested_groups(services, database):
    result = ldapsync.run_sync(services, full=True)
    assert result.state == "applied" and result.counts["created"] == COUNT and result.counts["pages"] == 4
    assert rows(database, "SELECT count(*), count(*) FILTER (WHERE active) FROM people") == [
        (COUNT, COUNT - len(DISABLED))
    ]
    assert {r[0] for r in rows(database, "SELECT user_name FROM people WHERE NOT active")} == DISABLED
    p17, p10 = person(database, "user017"), person(database, "user010")
    assert p17.manager_id == p10.id and p17.title == "Title 17" and p17.primary_email == "user017@example.com"
    assert set(p17.external_ids) == {"ldap", "ldap:dn"} and p17.external_ids["ldap:dn"] == user_dn(17).lower()
    members = dict(rows(database, "SELECT g.display_name, array_agg(p.user_name ORDER BY p.user_name) FROM groups g "
                                  "JOIN group_members m ON m.group_id = g.id JOIN people p ON p.id = m.person_id "
                                  "GROUP BY 1"))
    assert members["g1"] == members["g2"] == ["user001", "user002"]  # g1 <-> g2 is a cycle
    assert members["u1"] == ["user001", "user002", "user003", "user004"] and len(members["big"]) == COUNT
    journal = rows(database, "SELECT outcome, actor, count(*) FROM journal WHERE kind = 'sync' GROUP BY 1, 2")
    host = f"ldap:{services.settings.ldap_url[0].split('//')[1].split(':')[0]}"
    assert sorted(journal) == [("applied", host, 1), ("created", host, COUNT), ("group_created", host, 5)]
    again = ldapsync.run_sync(services, full=True)
    assert again.state == "applied" and again.message == f"{COUNT + 5} entries read; no changes"
    assert rows(database, "SELECT count(*) FROM people") == [(COUNT,)]


def test_incremental_reads_only_changes_and_never_removes(services, database, ldap):
    settle(ldap)
    ldapsync.run_sync(services, full=True)
    next_second()
    ldap.modify(f"dn: {user_dn(60)}\nchangetype: modify\nreplace: title\ntitle: Moved\n")
    ldap.add(person_ldif(500, manager=60))
    ldap.delete(user_dn(61))
    result = ldapsync.run_sync(services, full=False)
    assert result.state == "applied" and result.counts["people_read"] == 3  # user119 is at the mark
    # updated: user060's title, and user061 leaving group "big" (groups are read whole, so that is known)
    assert (result.counts["created"], result.counts["updated"], result.counts["removed"]) == (1, 2, 0)
    assert person(database, "user060").title == "Moved" and person(database, "user061").active
    assert person(database, "user500").manager_id == person(database, "user060").id
    updated = {d["dn"]: d["changes"] for d, in rows(database, "SELECT detail FROM journal WHERE outcome = 'updated'")}
    assert updated == {user_dn(60): {"title": ["Title 60", "Moved"]},
                       user_dn(61).lower(): {"groups": {"added": [], "removed": ["big"]}}}
    assert ldapsync.run_sync(services, full=False).counts["people_read"] == 2  # the mark moved on: 060 and 500
    assert ldapsync.run_sync(services, full=True).counts["removed"] == 1  # only a full read removes


def test_a_manager_who_arrives_later_is_resolved_then(services, database, ldap):
    ldap.add(person_ldif(300, manager=301))
    ldapsync.run_sync(services, full=True)
    waiting = person(database, "user300")
    assert waiting.manager_id is None and waiting.manager_ref == user_dn(301).lower()
    next_second()
    ldap.add(person_ldif(301))
    assert ldapsync.run_sync(services, full=False).state == "applied"
    assert person(database, "user300").manager_id == person(database, "user301").id
    (changes,), = rows(database, "SELECT detail->'changes' FROM journal WHERE subject = %s AND outcome = 'updated'",
                       (waiting.id,))
    assert changes == {"manager": [user_dn(301).lower(), person(database, "user301").id]}


def test_a_person_pushed_by_scim_is_joined_not_duplicated(services, database):
    with psycopg.connect(database.app_url) as conn:
        fields = people.Fields(user_name="okta-5", emails=({"value": "USER005@example.com", "primary": True},),
                               title="Okta title", external_id="00u5")
        scim = people.create(conn, fields, source="scim", ext_source="scim:okta")
    ldapsync.run_sync(services, full=True)
    assert rows(database, "SELECT count(*) FROM people") == [(COUNT,)]
    joined = person(database, "okta-5")  # SCIM's values stay; LDAP fills what SCIM left blank
    assert joined.id == scim.id and joined.title == "Okta title" and joined.given_name == "Given5"
    assert set(joined.external_ids) == {"scim:okta", "ldap", "ldap:dn"}
    assert joined.attribute_sources["given_name"] == "ldap" and joined.attribute_sources["title"] == "scim:okta"
    assert rows(database, "SELECT outcome FROM journal WHERE subject = %s", (scim.id,)) == [("joined",)]


def grant(database, user_name, resource="vpn"):
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO resources (key, name, kind) VALUES (%s, 'VPN', 'vpn') ON CONFLICT DO NOTHING",
                     (resource,))
        conn.execute("INSERT INTO grants (person_id, resource_id, state, granted_by) SELECT p.id, r.id, 'active', "
                     "'test' FROM people p, resources r WHERE p.user_name = %s AND r.key = %s", (user_name, resource))


def grant_state(database, user_name):
    return rows(database, "SELECT g.state, g.reason FROM grants g JOIN people p ON p.id = g.person_id "
                          "WHERE p.user_name = %s", (user_name,))


def test_disabled_or_removed_in_the_directory_loses_access_at_once(services, database, ldap):
    ldapsync.run_sync(services, full=True)
    grant(database, "user020")
    grant(database, "user021")
    next_second()
    ldap.modify(
        f"dn: {user_dn(20)}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    )
    ldap.delete(user_dn(21))
    counts = ldapsync.run_sync(services, full=True).counts
    assert (counts["disabled"], counts["removed"]) == (1, 1)
    assert grant_state(database, "user020") == [("revoked", "leaver: disabled in the directory")]
    assert grant_state(database, "user021") == [("revoked", "leaver: removed from the directory")]
    journal = dict(rows(database, "SELECT outcome, detail FROM journal WHERE outcome IN ('disabled', 'removed')"))
    assert journal["disabled"]["revoked"] == ["vpn"] and journal["disabled"]["changes"]["active"] == [True, False]
    assert journal["removed"]["revoked"] == ["vpn"] and journal["removed"]["leaver"] is True
    assert not person(database, "user020").active and person(database, "user021") is None  # soft-deleted


def assert_nothing_deactivated(database):
    assert rows(database, "SELECT count(*) FILTER (WHERE active), count(deleted_at) FROM people") == [
        (COUNT - len(DISABLED), 0)]


def test_a_server_that_is_down_or_goes_away_mid_read_changes_nothing(services, database, ldap):
    ldapsync.run_sync(services, full=True)
    ldap.delete(user_dn(5))  # would be a removal, had the read finished
    result = ldapsync.run_sync(services, full=True, on_progress=lambda stage, n: ldap.stop())
    assert result.state == "failed" and "LDAP" in result.message
    assert ldapsync.run_sync(services, full=True).state == "failed"  # stopped before the read
    assert_nothing_deactivated(database)
    failed = rows(database, "SELECT reasons->0->>'code', detail->>'run' FROM journal WHERE outcome = 'failed'")
    assert [code for code, _ in failed] == ["ldap_unavailable", "ldap_unavailable"]
    assert rows(database, "SELECT state, error IS NOT NULL FROM sync_runs WHERE id = %s", (failed[0][1],)) == [
        ("failed", True)]


def test_a_bind_account_that_sees_nothing_changes_nothing(settings, database, ldap, services):
    ldapsync.run_sync(services, full=True)
    blind = bootstrap.build(ldap_settings(settings, ldap, ldap_bind_dn=BLIND_DN, ldap_bind_password=BLIND_PW), database)
    try:
        full, partial = ldapsync.run_sync(blind, full=True), ldapsync.run_sync(blind, full=False)
    finally:
        blind.close()
    assert (full.state, partial.state) == ("failed", "failed")
    assert "returned no people" in full.message and "no groups" in partial.message
    assert_nothing_deactivated(database)
    assert rows(database, "SELECT count(*) FROM group_members") == [(131,)]


def delete_30_percent(ldap):
    for i in range(50, 50 + COUNT * 3 // 10):
        ldap.delete(user_dn(i))


def held_run(services, database, ldap):
    ldapsync.run_sync(services, full=True)
    delete_30_percent(ldap)
    result = ldapsync.run_sync(services, full=True)
    assert result.state == "held" and "would deactivate 31 of 120" in result.message
    assert_nothing_deactivated(database)
    assert rows(database, "SELECT state, plan IS NOT NULL FROM sync_runs WHERE id = %s", (result.run_id,)) == [
        ("held", True)]
    assert rows(database, "SELECT detail->>'message' FROM journal WHERE outcome = 'held'") == [(result.message,)]
    return result.run_id


def test_a_mass_deletion_is_held_then_applied_by_the_operator(services, database, ldap, settings):
    run_id = held_run(services, database, ldap)
    done = gatehouse("sync", "confirm", run_id, env=db_env(database))
    assert done.returncode == 0, done.stderr
    assert f"run {run_id} confirmed" in done.stdout
    assert rows(database, "SELECT count(deleted_at) FROM people") == [(COUNT * 3 // 10,)]
    assert rows(database, "SELECT state, decided_by LIKE 'operator:%%' FROM sync_runs WHERE id = %s", (run_id,)) == [
        ("confirmed", True)]
    assert rows(database, "SELECT count(*) FROM journal WHERE outcome = 'removed' AND actor LIKE 'operator:%'") == [
        (COUNT * 3 // 10,)]
    assert rows(database, "SELECT detail->>'run' FROM journal WHERE kind = 'admin'") == [(run_id,)]
    again = gatehouse("sync", "confirm", run_id, env=db_env(database))
    assert again.returncode == 1 and "is confirmed, not held" in again.stderr
    assert ldapsync.run_sync(services, full=True).message.endswith("no changes")


def test_a_held_run_is_confirmed_in_the_console_with_a_security_key(services, database, ldap, settings):
    run_id = held_run(services, database, ldap)
    app, web_services = make_app(ldap_settings(settings, ldap), database)
    web = app.test_client()
    try:
        key = SoftAuthenticator()
        assert enroll(web, database, key).status_code == 200
        page = web.get("/admin").get_data(as_text=True)
        assert run_id in page and "would deactivate 31 of 120" in page
        r, _, _ = step_up(web, key, "sync.confirm", {"run": run_id}, use_params={"run": "other"})
        assert r.status_code == 403  # the assertion is bound to this very run
        r, _, _ = step_up(web, key, "sync.confirm", {"run": run_id})
        assert r.status_code == 200 and r.json["state"] == "confirmed"
    finally:
        web_services.close()
    assert rows(database, "SELECT count(deleted_at) FROM people") == [(COUNT * 3 // 10,)]
    (detail, actor), = rows(database, "SELECT detail, actor FROM journal WHERE detail->>'action' = 'sync.confirm'")
    assert actor == "admin:ada@example.com" and detail["run"] == run_id and detail["counter"] >= 1


def test_a_held_run_can_be_discarded_and_a_stale_one_is_refused(services, database, ldap):
    run_id = held_run(services, database, ldap)
    with psycopg.connect(database.owner_url) as conn:  # someone changes a person the plan removes
        conn.execute("UPDATE people SET title = 'changed', version = version + 1 WHERE user_name = 'user050'")
    with psycopg.connect(database.app_url) as conn:
        with pytest.raises(ldapsync.Stale, match="no longer applies"):
            with conn.transaction():
                ldapsync.confirm(conn, run_id, actor="operator:test")
        assert_nothing_deactivated(database)
        with conn.transaction():
            assert ldapsync.discard(conn, run_id, actor="operator:test").state == "discarded"
    assert rows(database, "SELECT state, decided_by FROM sync_runs WHERE id = %s", (run_id,)) == [
        ("discarded", "operator:test")]
    assert_nothing_deactivated(database)


def test_a_newer_run_supersedes_a_held_one(services, database, ldap):
    run_id = held_run(services, database, ldap)
    second = ldapsync.run_sync(services, full=True)
    assert second.state == "held"
    assert rows(database, "SELECT state, decided_by FROM sync_runs WHERE id = %s", (run_id,)) == [
        ("discarded", f"run:{second.run_id}")]


def test_dry_run_writes_nothing(services, database):
    result = ldapsync.run_sync(services, full=True, dry_run=True)
    assert result.state == "dry-run" and result.run_id is None and len(result.plan.people) == COUNT
    assert rows(database, "SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM journal), "
                          "(SELECT count(*) FROM sync_runs)") == [(0, 0, 0)]


def test_an_entry_that_collides_with_someone_else_is_a_conflict_not_a_failure(services, database):
    with psycopg.connect(database.app_url) as conn:  # same userName, different e-mail: not the same person
        people.create(conn, people.Fields(user_name="user007", emails=({"value": "x@example.org"},)),
                      source="scim", ext_source="scim:okta")
    result = ldapsync.run_sync(services, full=True)
    assert result.state == "applied" and result.counts["conflicts"] == 1 and result.counts["created"] == COUNT - 1
    (detail,), = rows(database, "SELECT detail FROM journal WHERE outcome = 'conflict'")
    assert detail["dn"] == user_dn(7) and "userName 'user007' belongs to another person" in detail["reason"]


def test_a_primary_email_someone_else_has_is_a_conflict_and_that_entry_is_not_written(services, database, ldap):
    ldap.modify(f"dn: {user_dn(8)}\nchangetype: modify\nreplace: mail\nmail: USER007@example.com\n")
    result = ldapsync.run_sync(services, full=True)
    assert result.state == "applied" and result.counts["conflicts"] == 1 and result.counts["created"] == COUNT - 1
    assert person(database, "user008") is None and person(database, "user007").primary_email == "user007@example.com"
    (detail,), = rows(database, "SELECT detail FROM journal WHERE outcome = 'conflict'")
    assert detail["dn"] == user_dn(8) and "primary e-mail 'USER007@example.com' belongs to another person" in detail[
        "reason"]
    # A person already synced who takes someone's address keeps every old value until the address is free.
    next_second()
    ldap.modify(f"dn: {user_dn(10)}\nchangetype: modify\nreplace: mail\nmail: user011@example.com\n"
                f"-\nreplace: title\ntitle: Moved\n")
    again = ldapsync.run_sync(services, full=False)
    assert again.state == "applied"
    conflicts = dict(rows(database, "SELECT detail->>'dn', detail->>'reason' FROM journal WHERE outcome = 'conflict' "
                                    "AND detail->>'run' = %s", (again.run_id,)))
    assert conflicts[user_dn(10)] == "primary e-mail 'user011@example.com' belongs to another person"
    assert set(conflicts) <= {user_dn(8), user_dn(10)}  # user008 again, when the inclusive mark re-reads it
    p10 = person(database, "user010")
    assert (p10.primary_email, p10.title, p10.version) == ("user010@example.com", "Title 10", 1)
    assert rows(database, "SELECT count(*) FROM people WHERE lower(primary_email) = 'user011@example.com'") == [(1,)]


def test_cli_sync_prints_progress_lines_and_dry_run_lines(database, ldap):
    env = {**db_env(database), **ldap_env(ldap)}
    dry = gatehouse("sync", "ldap", "--full", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would create user017 (" in dry.stdout and "dry run (nothing written)" in dry.stdout
    done = gatehouse("sync", "ldap", "--full", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:4] == ["read 40 entries", "read 80 entries", "read 120 entries", "read 125 entries"]
    assert lines[-1].endswith(f"applied: {COUNT + 5} entries read; {COUNT} created, 5 groups changed, "
                              "131 members added")
    listed = gatehouse("sync", "runs", env=env)
    assert listed.returncode == 0 and " applied " in listed.stdout and "operator:" in listed.stdout
    down = gatehouse("sync", "ldap", env={**env, "GATEHOUSE_LDAP_URL": "ldap://127.0.0.1:1"})
    assert down.returncode == 1 and down.stderr.startswith("gatehouse: error: ldap sync failed (run ")


def test_cli_sync_exits_3_when_held(database, ldap, services):
    ldapsync.run_sync(services, full=True)
    delete_30_percent(ldap)
    dry = gatehouse("sync", "ldap", "--full", "--dry-run", env={**db_env(database), **ldap_env(ldap)})
    assert dry.returncode == 3 and "dry run (nothing written): would be held: would deactivate" in dry.stdout
    assert rows(database, "SELECT count(*) FROM sync_runs WHERE state = 'held'") == [(0,)]
    held = gatehouse("sync", "ldap", "--full", env={**db_env(database), **ldap_env(ldap)})
    assert held.returncode == 3 and "HELD: would deactivate" in held.stdout and "gatehouse sync confirm" in held.stdout


def test_unusable_ldap_settings_are_a_config_error(database):
    missing = gatehouse("sync", "ldap", env=db_env(database))
    assert missing.returncode == 2 and "GATEHOUSE_LDAP_URL" in missing.stderr
    bad = gatehouse("sync", "ldap", env={**db_env(database), "GATEHOUSE_LDAP_URL": "http://x"})
    assert bad.returncode == 2 and "ldap:// or ldaps://" in bad.stderr


def test_a_renamed_entry_keeps_its_person_and_its_reports(services, database, ldap):
    ldapsync.run_sync(services, full=True)
    before = person(database, "user030")
    ldap.modify(f"dn: {user_dn(30)}\nchangetype: modrdn\nnewrdn: uid=user030x\ndeleteoldrdn: 1\n")
    ldap.wait_until_none(f"(manager={user_dn(30)})")  # refint moves the reports' manager values after it answers
    result = ldapsync.run_sync(services, full=True)
    assert (result.counts["updated"], result.counts["created"], result.counts["removed"]) == (1, 0, 0)
    after = person(database, "user030x")
    assert after.id == before.id and after.external_ids["ldap:dn"] == f"uid=user030x,{PEOPLE}".lower()
    assert person(database, "user031").manager_id == before.id  # refint moved the manager value with the entry


def test_group_rules_follow_directory_membership(services, database, ldap):
    ldapsync.run_sync(services, full=True)
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO resources (key, name, kind) VALUES ('wiki', 'Wiki', 'tool') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO group_grant_rules (group_id, resource_id, created_by) SELECT g.id, r.id, 'test' "
                     "FROM groups g, resources r WHERE g.display_name = 'u1' AND r.key = 'wiki'")
    ldapsync.run_sync(services, full=True)  # the next run applies the rule to u1's members
    holders = rows(database, "SELECT p.user_name FROM grants g JOIN people p ON p.id = g.person_id "
                             "WHERE g.state = 'active' ORDER BY 1")
    assert [h for (h,) in holders] == ["user001", "user002", "user004"]  # user003 is disabled: no grant
    assert rows(database, "SELECT count(*) FROM journal WHERE kind = 'grant'") == [(3,)]


def test_every_attribute_mapping_is_a_setting(database, ldap):
    """Login, key, e-mail, department, the disabled attribute and its value: each GATEHOUSE_LDAP_* in the CLI."""
    ldap.modify(f"dn: {user_dn(5)}\nchangetype: modify\nadd: employeeType\nemployeeType: Leaver\n"
                f"-\nreplace: mail\nmail: user005@corp.local\n")
    env = {**db_env(database), **ldap_env(ldap, GATEHOUSE_LDAP_ATTR_LOGIN="employeeNumber",
                                          GATEHOUSE_LDAP_ATTR_KEY="uid", GATEHOUSE_LDAP_ATTR_GROUP_KEY="cn",
                                          GATEHOUSE_LDAP_ATTR_DEPARTMENT="title",
                                          GATEHOUSE_LDAP_ATTR_EMAIL="mail", GATEHOUSE_LDAP_ATTR_TITLE="displayName",
                                          GATEHOUSE_LDAP_DISABLED_ATTR="employeeType",
                                          GATEHOUSE_LDAP_DISABLED_VALUE="leaver")}
    done = gatehouse("sync", "ldap", "--full", env=env)
    assert done.returncode == 0, done.stderr
    found = dict((r[0], r[1:]) for r in rows(
        database, "SELECT p.user_name, p.active, p.primary_email, p.department, p.title, x.external_id FROM people p "
                  "JOIN person_external_ids x ON x.person_id = p.id AND x.source = 'ldap'"))
    assert found["E00005"] == (False, "user005@corp.local", "Title 5", "Person 5", "user005")  # employeeType
    assert found["E00003"][0] is True  # pwdAccountLockedTime no longer counts: the setting named another attribute
    assert sum(1 for r in found.values() if not r[0]) == 1
    assert ("g1", "g1") in rows(database, "SELECT display_name, external_id FROM groups")  # keyed by cn
    bad = gatehouse("sync", "ldap", env={**env, "GATEHOUSE_LDAP_ATTR_EMAIL": "mail;x"})
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "GATEHOUSE_LDAP_ATTR_EMAIL" in bad.stderr
    both = gatehouse("sync", "ldap", env={**env, "GATEHOUSE_LDAP_DISABLED_BIT": "2"})
    assert both.returncode == 2 and "not both" in both.stderr, both.stderr
    assert rows(database, "SELECT count(*) FROM sync_runs") == [(1,)]  # refused settings start no run


def test_sync_runs_and_what_they_changed_are_counted_in_the_metrics(services, database, ldap):
    from prometheus_client import REGISTRY

    def counted() -> tuple[float, ...]:
        value = lambda name, **labels: REGISTRY.get_sample_value(name, labels) or 0.0  # noqa: E731
        return (value("gatehouse_sync_runs_total", kind="full", outcome="applied"),
                value("gatehouse_sync_runs_total", kind="full", outcome="failed"),
                value("gatehouse_sync_changes_total", change="created"))

    before = counted()
    assert ldapsync.run_sync(services, full=True).state == "applied"
    ldap.stop()
    assert ldapsync.run_sync(services, full=True).state == "failed"
    created = rows(database, "SELECT count(*) FROM journal WHERE kind = 'sync' AND outcome = 'created'")[0][0]
    assert created == COUNT
    assert [after - was for after, was in zip(counted(), before, strict=True)] == [1, 1, created]
