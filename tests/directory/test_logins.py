"""One person, every login (issue 12 item 4): the LDAP uid and the SCIM userName each resolve the person.

Real slapd (tests/support/ldapserver.py), the real SCIM API and the real check API on a real PostgreSQL.
"""

import psycopg
import pytest
from psycopg.types.json import Jsonb

from service import bootstrap
from service.access import store as grant_store
from service.db import migrate
from service.directory import sync as ldapsync
from tests.support.factories import rows
from tests.support.ldap import ldap_settings
from tests.support.ldapserver import person_ldif, user_dn
from tests.support.migrations import migrate_before
from tests.support.scim import USER, Scim, make_token, patch_op


@pytest.fixture
def services(settings, database, ldap):
    built = bootstrap.build(ldap_settings(settings, ldap), database)
    yield built
    built.close()


@pytest.fixture
def okta(client, database) -> Scim:
    return Scim(client, make_token(database, "okta"))


@pytest.fixture
def gateway(database) -> dict:
    return {"Authorization": f"Bearer {make_token(database, 'vpn-gw', scopes=('access:check',))}"}


def check(client, gateway, user: str, resource: str = "vpn") -> dict:
    answer = client.post("/api/v1/access/check", json={"user": user, "resource": resource}, headers=gateway)
    assert answer.status_code == 200, answer.json
    return answer.json


def logins(database, person_id: str) -> list:
    return rows(database, "SELECT login_key, logins FROM person_logins WHERE person_id = %s ORDER BY 1", (person_id,))


def okta_user(user_name: str, email: str, **extra) -> dict:
    return {"schemas": [USER], "userName": user_name, "externalId": "00u5", "active": True,
            "emails": [{"value": email, "type": "work", "primary": True}], **extra}


def test_an_okta_push_onto_an_ldap_person_keeps_both_logins_and_both_check_allow(
        client, services, database, okta, gateway):
    assert ldapsync.run_sync(services, full=True).state == "applied"
    with psycopg.connect(database.app_url) as conn:
        grant_store.grant(conn, "user005", "vpn", by="test")
    (pid,), = rows(database, "SELECT id::text FROM people WHERE user_name = 'user005'")
    assert check(client, gateway, "user005")["allow"] is True

    # Okta pushes the person LDAP knows (the join key is the e-mail) with its own userName.
    status, body, _ = okta.post("Users", okta_user("samir.quill@acme.example", "user005@example.com"))
    assert (status, body["id"], body["userName"]) == (201, pid, "samir.quill@acme.example")
    assert rows(database, "SELECT outcome, actor FROM journal WHERE subject = %s AND detail->>'resource' = 'User'",
                (pid,)) == [("joined", "client:okta")]
    # The gateway sends the directory login; the SSO side the SCIM one: both name the person, in any variant.
    for user in ("user005", "USER005", "ｕｓｅｒ005", "samir.quill@acme.example", "Samir.Quill@ACME.example "):
        answer = check(client, gateway, user)
        assert answer["allow"] is True, (user, answer)
    assert logins(database, pid) == [
        ("samir.quill@acme.example", {"userName": "samir.quill@acme.example", "scim:okta": "samir.quill@acme.example"}),
        ("user005", {"ldap": "user005"})]

    # The next full sync changes nothing: the uid is this person's, not a conflict, and Okta's userName stays.
    again = ldapsync.run_sync(services, full=True)
    assert (again.state, again.counts["conflicts"]) == ("applied", 0)
    assert rows(database, "SELECT user_name, attribute_sources->>'user_name', attribute_sources->>'owner' "
                          "FROM people WHERE id = %s", (pid,)) == [
        ("samir.quill@acme.example", "scim:okta", "scim:okta")]
    assert len(logins(database, pid)) == 2
    assert check(client, gateway, "user005")["allow"] is True


def test_a_uid_renamed_in_the_directory_moves_the_ldap_login_and_keeps_the_scim_one(
        client, services, database, ldap, okta, gateway):
    ldapsync.run_sync(services, full=True)
    (pid,), = rows(database, "SELECT id::text FROM people WHERE user_name = 'user005'")
    assert okta.post("Users", okta_user("samir.quill@acme.example", "user005@example.com"))[0] == 201
    with psycopg.connect(database.app_url) as conn:
        grant_store.grant(conn, "samir.quill@acme.example", "vpn", by="test")
    ldap.modify(f"dn: {user_dn(5)}\nchangetype: modrdn\nnewrdn: uid=squill\ndeleteoldrdn: 1\n")
    assert ldapsync.run_sync(services, full=True).state == "applied"
    assert logins(database, pid) == [
        ("samir.quill@acme.example", {"userName": "samir.quill@acme.example", "scim:okta": "samir.quill@acme.example"}),
        ("squill", {"ldap": "squill"})]
    (changes,), = rows(database, "SELECT detail->'changes' FROM journal WHERE subject = %s AND outcome = 'updated'",
                       (pid,))
    assert changes["login"] == ["user005", "squill"]
    assert check(client, gateway, "squill")["allow"] is True
    assert check(client, gateway, "user005")["reasons"][0]["code"] == "person_unknown"  # the old uid is gone


def test_a_uid_that_is_another_persons_login_is_a_conflict_not_a_second_person(client, services, database, ldap,
                                                                                okta):
    ldapsync.run_sync(services, full=True)
    # A SCIM person whose userName is, once normalized, the uid of an entry added later.
    status, body, _ = okta.post("Users", {"schemas": [USER], "userName": "ＵＳＥＲ500 ",
                                          "emails": [{"value": "other@elsewhere.example", "primary": True}]})
    assert status == 201
    ldap.add(person_ldif(500))
    result = ldapsync.run_sync(services, full=True)
    assert (result.state, result.counts["created"], result.counts["conflicts"]) == ("applied", 0, 1)
    assert rows(database, "SELECT count(*) FROM people WHERE user_name IN ('user500', 'ＵＳＥＲ500 ')") == [(1,)]
    (reason,), = rows(database, "SELECT detail->>'reason' FROM journal WHERE outcome = 'conflict'")
    assert reason == "userName 'user500' belongs to another person"
    assert logins(database, body["id"])[0][0] == "user500"


def test_a_scim_userName_that_is_an_ldap_persons_uid_is_409_uniqueness(client, services, database, okta):
    ldapsync.run_sync(services, full=True)
    (pid,), = rows(database, "SELECT id::text FROM people WHERE user_name = 'user005'")
    okta.post("Users", okta_user("samir.quill@acme.example", "user005@example.com"))
    # user005 is still the LDAP person's login: another person may not take it, in any variant.
    status, body, _ = okta.post("Users", {"schemas": [USER], "userName": "User005",
                                          "emails": [{"value": "x@elsewhere.example", "primary": True}]})
    assert (status, body["scimType"]) == (409, "uniqueness")
    other = okta.post("Users", {"schemas": [USER], "userName": "someone@elsewhere.example"})[1]["id"]
    status, body, _ = okta.patch(f"Users/{other}", patch_op({"op": "replace", "path": "userName",
                                                             "value": "USER005"}))
    assert (status, body["scimType"]) == (409, "uniqueness")
    assert rows(database, "SELECT person_id::text FROM person_logins WHERE login_key = 'user005'") == [(pid,)]
    assert rows(database, "SELECT user_name FROM people WHERE id = %s", (other,)) == [("someone@elsewhere.example",)]


def test_the_operator_cli_and_lists_name_a_person_by_any_of_their_logins(client, services, database, okta):
    ldapsync.run_sync(services, full=True)
    okta.post("Users", okta_user("samir.quill@acme.example", "user005@example.com"))
    with psycopg.connect(database.app_url) as conn:
        change = grant_store.grant(conn, "USER005", "vpn", by="test")  # the uid: the person Okta renamed
        assert [g.user_name for g in grant_store.list_grants(conn, user="user005")] == ["samir.quill@acme.example"]
    assert rows(database, "SELECT p.user_name FROM grants g JOIN people p ON p.id = g.person_id "
                          "WHERE g.person_id = %s", (change.person_id,)) == [("samir.quill@acme.example",)]


def test_the_scim_filter_by_userName_uses_the_login_key_not_the_other_logins(services, database, okta):
    ldapsync.run_sync(services, full=True)
    okta.post("Users", okta_user("samir.quill@acme.example", "user005@example.com"))
    found = okta.get('Users?filter=userName eq "SAMIR.QUILL@acme.example "')[1]
    assert [r["userName"] for r in found["Resources"]] == ["samir.quill@acme.example"]
    # The uid is a login of the person, not their userName: a filter on userName compares the userName.
    assert okta.get('Users?filter=userName eq "user005"')[1]["totalResults"] == 0
    assert okta.get('Users?filter=userName sw "ｓａｍｉｒ."')[1]["totalResults"] == 1
    assert okta.get('Users?filter=userName co "_quill"')[1]["totalResults"] == 0  # _ is literal, not a wildcard
    assert okta.get('Users?filter=userName co ".quill"')[1]["totalResults"] == 1


def test_018_gives_existing_people_their_sources_logins_so_a_later_join_keeps_the_uid(empty_database, monkeypatch):
    migrate_before(empty_database, 18, monkeypatch)
    with psycopg.connect(empty_database.owner_url) as conn:
        ann, bob, hand = (conn.execute(
            "INSERT INTO people (user_name, source, attribute_sources, scim_owner) VALUES (%s, %s, %s, %s) "
            "RETURNING id::text", row).fetchone()[0] for row in (
            ("ann", "ldap", Jsonb({"user_name": "ldap"}), None),
            ("Bob@Okta.example", "scim", Jsonb({"user_name": "scim:okta"}), "scim:okta"),
            ("hand", "manual", Jsonb({}), None)))
    assert 18 in [m.version for m in migrate.migrate(empty_database)]
    with psycopg.connect(empty_database.owner_url) as conn:
        found = conn.execute("SELECT person_id::text, login_key, logins FROM person_logins ORDER BY 2").fetchall()
        assert found == [(ann, "ann", {"userName": "ann", "ldap": "ann"}),
                         (bob, "bob@okta.example", {"userName": "Bob@Okta.example", "scim:okta": "Bob@Okta.example"}),
                         (hand, "hand", {"userName": "hand"})]
        assert conn.execute("SELECT user_name, attribute_sources->>'owner' FROM people ORDER BY lower(user_name)"
                            ).fetchall() == [("ann", None), ("Bob@Okta.example", "scim:okta"), ("hand", None)]
        # Okta renames ann (its join): her LDAP login stays hers
        conn.execute("UPDATE people SET user_name = 'ann@okta.example' WHERE id = %s", (ann,))
        assert conn.execute("SELECT login_key, logins FROM person_logins WHERE person_id = %s ORDER BY 1",
                            (ann,)).fetchall() == [("ann", {"ldap": "ann"}),
                                                   ("ann@okta.example", {"userName": "ann@okta.example"})]
