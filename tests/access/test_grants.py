"""Access by hand: admin actions (WebAuthn-bound) to grant and revoke, and group → resource rules."""

import re

import psycopg
import pytest

from tests.support.admin import enroll, make_app, step_up
from tests.support.factories import rows
from tests.support.scim import GROUP, USER, Scim, make_token, patch_op
from tests.support.softauthn import SoftAuthenticator


@pytest.fixture
def admin(settings, database):
    app, services = make_app(settings, database)
    web = app.test_client()
    key = SoftAuthenticator()
    assert enroll(web, database, key).status_code == 200
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO resources (key, name, kind) VALUES ('vpn', 'VPN', 'vpn'), ('wiki', 'Wiki', 'tool') "
                     "ON CONFLICT (key) DO NOTHING")
    yield web, key
    services.close()


def person(database, user_name):
    return rows(database, "INSERT INTO people (user_name, source) VALUES (%s, 'manual') RETURNING id::text",
                (user_name,))[0][0]


def test_grant_and_revoke_by_hand(admin, database):
    web, key = admin
    pid = person(database, "ada")
    r, _, _ = step_up(web, key, "grants.grant", {"user": "ADA", "resource": "vpn"})
    assert r.status_code == 200
    assert rows(database, "SELECT state, granted_by FROM grants") == [("active", "admin:ada@example.com")]
    (kind, subject, resource, actor), = rows(database, "SELECT kind, subject, resource, actor FROM journal "
                                                       "WHERE kind = 'grant'")
    assert (kind, subject, resource, actor) == ("grant", pid, "vpn", "admin:ada@example.com")
    (subject, resource, detail), = rows(database, "SELECT subject, resource, detail FROM journal "
                                                  "WHERE detail->>'action' = 'grants.grant'")
    assert (subject, resource) == (pid, "vpn")  # the admin's own row names whom and what, too
    assert detail["credential_id"] and detail["counter"] > 0
    r, _, _ = step_up(web, key, "grants.revoke", {"user": "ada", "resource": "vpn", "reason": "moved team"})
    assert r.status_code == 200
    assert rows(database, "SELECT state, reason FROM grants") == [("revoked", "moved team")]
    r, _, _ = step_up(web, key, "grants.revoke", {"user": "ada", "resource": "vpn"})
    assert r.status_code == 404  # nothing live to revoke


def test_grant_refused_without_an_assertion_for_it(admin, database):
    web, key = admin
    person(database, "bob")
    r, _, _ = step_up(web, key, "grants.grant", {"user": "bob", "resource": "vpn"},
                      use_params={"user": "bob", "resource": "wiki"})
    assert r.status_code == 403 and r.json["code"] == "webauthn_wrong_body"
    assert rows(database, "SELECT count(*) FROM grants") == [(0,)]


def test_group_rule_follows_membership(admin, client, database):
    web, key = admin
    scim = Scim(client, make_token(database, "okta"))
    a = scim.post("Users", {"schemas": [USER], "userName": "a@example.com"})[1]["id"]
    b = scim.post("Users", {"schemas": [USER], "userName": "b@example.com"})[1]["id"]
    gid = scim.post("Groups", {"schemas": [GROUP], "displayName": "Engineers", "members": [{"value": a}]})[1]["id"]
    r, _, _ = step_up(web, key, "rules.add", {"group": "engineers", "resource": "vpn"})
    assert r.status_code == 200 and r.json["granted"] == 1
    assert rows(database, "SELECT person_id::text, state, granted_by FROM grants") == [(a, "active", "rule")]
    # b joins through SCIM: granted; a leaves: revoked.
    scim.patch(f"Groups/{gid}", patch_op({"op": "add", "path": "members", "value": [{"value": b}]}))
    scim.patch(f"Groups/{gid}", patch_op({"op": "remove", "path": f'members[value eq "{a}"]'}))
    states = dict(rows(database, "SELECT person_id::text, state FROM grants"))
    assert states == {a: "revoked", b: "active"}
    kinds = [k for (k,) in rows(database, "SELECT kind FROM journal WHERE kind IN ('grant', 'revoke') ORDER BY seq")]
    assert kinds == ["grant", "grant", "revoke"]
    # A leaver's revoked grant is not brought back by rejoining.
    scim.patch(f"Users/{b}", patch_op({"op": "replace", "value": {"active": False}}))
    scim.patch(f"Users/{b}", patch_op({"op": "replace", "value": {"active": True}}))
    scim.patch(f"Groups/{gid}", patch_op({"op": "replace", "path": "displayName", "value": "Eng"}))
    assert dict(rows(database, "SELECT person_id::text, state FROM grants"))[b] == "revoked"
    # Someone who rejoins gets back what the rule took away.
    scim.patch(f"Groups/{gid}", patch_op({"op": "add", "path": "members", "value": [{"value": a}]}))
    assert dict(rows(database, "SELECT person_id::text, state FROM grants"))[a] == "active"
    # Removing the rule revokes what it gave.
    c = scim.post("Users", {"schemas": [USER], "userName": "c@example.com"})[1]["id"]
    scim.patch(f"Groups/{gid}", patch_op({"op": "add", "path": "members", "value": [{"value": c}]}))
    assert dict(rows(database, "SELECT person_id::text, state FROM grants"))[c] == "active"
    r, _, _ = step_up(web, key, "rules.remove", {"group": "Eng", "resource": "vpn"})
    assert r.status_code == 200
    assert dict(rows(database, "SELECT person_id::text, state FROM grants"))[c] == "revoked"


def test_access_page_lists_rules(admin, database):
    web, key = admin
    page = web.get("/admin/access").get_data(as_text=True)
    assert "Group rules" in page and "No rules yet." in page
    rows(database, "INSERT INTO groups (display_name, source) VALUES ('Engineers', 'scim'), ('Sales', 'scim') "
                   "RETURNING 1")
    for group, resource in (("engineers", "wiki"), ("Sales", "vpn")):
        r, _, _ = step_up(web, key, "rules.add", {"group": group, "resource": resource})
        assert r.status_code == 200, r.json
    page = web.get("/admin/access")
    assert page.status_code == 200
    listed = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", page.get_data(as_text=True))
    assert listed == [("Engineers", "wiki", "admin:ada@example.com"), ("Sales", "vpn", "admin:ada@example.com")]
    assert 'data-action="rules.remove" data-group="Sales" data-resource="vpn"' in page.get_data(as_text=True)
    assert "No rules yet." not in page.get_data(as_text=True)
    assert web.application.test_client().get("/admin/access").status_code == 401
