"""Each scim2-tester failure of issue 11, as a regression test over the real endpoints and database."""

import psycopg

from service.access import store as grant_store
from tests.support.factories import rows
from tests.support.scim import ENTERPRISE, GROUP, USER, make_token, patch_op

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def user(user_name: str, **extra) -> dict:
    return {"schemas": [USER], "userName": user_name, **extra}


def test_a_search_at_the_root_covers_users_then_groups_and_pages_across_them(scim):
    ids = [scim.post("Users", user(f"u{n}"))[1]["id"] for n in range(2)]
    ids += [scim.post("Groups", {"schemas": [GROUP], "displayName": f"g{n}"})[1]["id"] for n in range(2)]
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    status, body, _ = scim.post("/scim/v2/.search", search)
    assert status == 200 and body["schemas"] == [LIST]
    assert (body["totalResults"], [r["id"] for r in body["Resources"]]) == (4, ids)
    status, body, _ = scim.post("/scim/v2/.search", {"startIndex": 2, "count": 2})
    assert [r["id"] for r in body["Resources"]] == ids[1:3] and body["totalResults"] == 4
    status, body, _ = scim.post("/scim/v2/.search", {"startIndex": 4})
    assert [r["id"] for r in body["Resources"]] == ids[3:]
    # an attribute only Users have matches no Group; one neither has is an invalid filter
    status, body, _ = scim.post("/scim/v2/.search", {"filter": 'userName eq "u1"'})
    assert [r["id"] for r in body["Resources"]] == [ids[1]]
    status, body, _ = scim.post("/scim/v2/.search", {"filter": 'displayName eq "g0"'})
    assert [r["id"] for r in body["Resources"]] == [ids[2]]
    status, body, _ = scim.post("/scim/v2/.search", {"filter": 'shoeSize eq "9"'})
    assert (status, body["scimType"]) == (400, "invalidFilter")


def test_name_formatted_is_kept_as_sent(scim, database):
    uid = scim.post("Users", user("barbara", name={"givenName": "Barbara", "familyName": "Jensen"}))[1]["id"]
    name = {"givenName": "Babs", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen, III"}
    for op in ("add", "replace"):
        status, body, _ = scim.patch(f"Users/{uid}", patch_op({"op": op, "path": "name", "value": name}))
        assert (status, body["name"]) == (200, name)
    assert scim.get(f"Users/{uid}")[1]["name"] == name
    assert rows(database, "SELECT formatted_name FROM people") == [("Ms. Barbara J Jensen, III",)]
    # never derived: a person with no formatted name has none
    assert "formatted" not in scim.post("Users", user("ann", name={"givenName": "Ann"}))[1]["name"]


def test_a_patch_whose_path_is_the_enterprise_urn_takes_an_object_value(scim):
    uid = scim.post("Users", user("e"))[1]["id"]
    value = {"schemas": [ENTERPRISE], "employeeNumber": "701984", "department": "Tour Operations"}
    for op, number in (("add", "701984"), ("replace", "701985")):
        status, body, _ = scim.patch(f"Users/{uid}", patch_op({"op": op, "path": ENTERPRISE,
                                                                "value": {**value, "employeeNumber": number}}))
        assert status == 200, body
        assert body[ENTERPRISE] == {"employeeNumber": number, "department": "Tour Operations"}
        assert ENTERPRISE in body["schemas"]


def test_a_patch_removes_external_id(scim, database):
    uid = scim.post("Users", user("x", externalId="00u1"))[1]["id"]
    status, body, _ = scim.patch(f"Users/{uid}", patch_op({"op": "remove", "path": "externalId"}))
    assert status == 200 and "externalId" not in body
    assert "externalId" not in scim.get(f"Users/{uid}")[1]
    assert rows(database, "SELECT count(*) FROM person_external_ids") == [(0,)]
    (detail,), = rows(database, "SELECT detail FROM journal WHERE outcome = 'updated'")
    assert detail["changes"] == {"external_id": ["00u1", None]}


def test_removing_active_fails_closed_a_leaver_returned_without_active(client, scim, database):
    rows(database, "INSERT INTO resources (key, name, kind) VALUES ('wiki', 'Wiki', 'tool') "
                         "ON CONFLICT (key) DO NOTHING RETURNING 1")
    uid = scim.post("Users", user("leaver", active=True))[1]["id"]
    with psycopg.connect(database.app_url) as conn:
        grant_store.grant(conn, "leaver", "wiki", by="test")
    status, body, _ = scim.patch(f"Users/{uid}", patch_op({"op": "remove", "path": "active"}))
    assert status == 200 and "active" not in body
    assert "active" not in scim.get(f"Users/{uid}")[1]
    assert rows(database, "SELECT active, active_assigned FROM people") == [(False, False)]
    assert rows(database, "SELECT state, reason FROM grants") == [("revoked", "leaver: deactivated")]
    (detail,), = rows(database, "SELECT detail FROM journal WHERE outcome = 'deactivated'")
    assert detail["leaver"] is True and detail["revoked"] == ["wiki"] and detail["changes"]["active"] == [True, None]
    gateway = {"Authorization": f"Bearer {make_token(database, 'gw', scopes=('access:check',))}"}
    answer = client.post("/api/v1/access/check", json={"user": "leaver", "resource": "wiki"}, headers=gateway)
    assert answer.status_code == 200 and answer.json["allow"] is False
    # assigning it again brings it back
    status, body, _ = scim.patch(f"Users/{uid}", patch_op({"op": "replace", "path": "active", "value": True}))
    assert (status, body["active"]) == (200, True)
    assert rows(database, "SELECT active, active_assigned FROM people") == [(True, True)]


def test_group_members_are_returned_as_sent(scim, database):
    people = [scim.post("Users", user(f"m{n}", displayName=f"Member {n}"))[1] for n in range(2)]
    gid = scim.post("Groups", {"schemas": [GROUP], "displayName": "team"})[1]["id"]
    sent = [{"value": p["id"], "$ref": p["meta"]["location"], "display": f"shown {n}", "type": "User"}
            for n, p in enumerate(people)]
    for op in ("add", "replace"):
        status, _, _ = scim.patch(f"Groups/{gid}", patch_op({"op": op, "path": "members", "value": sent}))
        assert status == 204
        members = scim.get(f"Groups/{gid}")[1]["members"]
        assert sorted(members, key=lambda m: m["value"]) == sorted(sent, key=lambda m: m["value"])
    # a display equal to the person's own is not frozen: it follows a rename of the person
    scim.put(f"Groups/{gid}", {"schemas": [GROUP], "displayName": "team",
                               "members": [{"value": people[0]["id"], "display": "Member 0"}]})
    assert rows(database, "SELECT display FROM group_members") == [(None,)]
    scim.patch(f"Users/{people[0]['id']}", patch_op({"op": "replace", "path": "displayName", "value": "Renamed"}))
    assert scim.get(f"Groups/{gid}")[1]["members"][0]["display"] == "Renamed"


def test_discovery_lists_every_stored_attribute_with_true_characteristics(scim):
    schemas = {s["id"]: s for s in scim.get("Schemas")[1]["Resources"]}

    def attribute(schema, name):
        return next(a for a in schemas[schema]["attributes"] if a["name"] == name)

    assert {a["name"] for a in schemas[USER]["attributes"]} == {"userName", "name", "displayName", "title", "active",
                                                                "emails", "groups"}
    assert {s["name"] for s in attribute(USER, "name")["subAttributes"]} == {"givenName", "familyName", "formatted"}
    assert attribute(USER, "userName")["uniqueness"] == "server"
    number = attribute(ENTERPRISE, "employeeNumber")
    assert (number["uniqueness"], number["caseExact"]) == ("server", True)
    assert attribute(GROUP, "displayName")["uniqueness"] == "server"
    assert {s["name"] for s in attribute(GROUP, "members")["subAttributes"]} == {"value", "display", "type", "$ref"}


def test_a_put_without_external_id_removes_it(scim, database):
    uid = scim.post("Users", user("x", externalId="00u1", title="t"))[1]["id"]
    status, body, _ = scim.put(f"Users/{uid}", user("x", title="t"))  # PUT replaces (RFC 7644 §3.5.1)
    assert status == 200 and "externalId" not in body
    assert "externalId" not in scim.get(f"Users/{uid}")[1]
    assert rows(database, "SELECT count(*) FROM person_external_ids") == [(0,)]
    (detail,), = rows(database, "SELECT detail FROM journal WHERE outcome = 'updated'")
    assert detail["changes"] == {"external_id": ["00u1", None]}
    assert scim.put(f"Users/{uid}", user("x", title="t"))[0] == 200  # nothing left to remove: no change, no row
    assert rows(database, "SELECT count(*) FROM journal WHERE outcome = 'updated'") == [(1,)]


def test_the_owning_client_is_shown_in_attribute_sources(scim, database):
    uid = scim.post("Users", user("owned"))[1]["id"]
    assert rows(database, "SELECT attribute_sources->>'owner', attribute_sources->>'user_name' FROM people") \
        == [("scim:okta", "scim:okta")]
    rows(database, "INSERT INTO people (user_name, source) VALUES ('from-ldap', 'ldap') RETURNING 1")
    assert rows(database, "SELECT user_name, attribute_sources->>'owner' FROM people ORDER BY 1") == [
        ("from-ldap", None), ("owned", "scim:okta")]
    assert scim.patch(f"Users/{uid}", patch_op({"op": "replace", "path": "title", "value": "x"}))[0] == 200
    assert rows(database, "SELECT attribute_sources->>'owner' FROM people WHERE id = %s", (uid,)) == [
        ("scim:okta",)]


def test_a_user_lists_its_groups_read_only(scim, database):
    uid = scim.post("Users", user("member"))[1]["id"]
    gid = scim.post("Groups", {"schemas": [GROUP], "displayName": "team", "members": [{"value": uid}]})[1]["id"]
    body = scim.get(f"Users/{uid}")[1]
    base = body["meta"]["location"].rsplit("/Users/", 1)[0]
    assert body["groups"] == [{"value": gid, "$ref": f"{base}/Groups/{gid}", "display": "team", "type": "direct"}]
    # a client may not change them here (RFC 7644 §3.5.2: readOnly), and a PUT echoing them changes nothing
    status, error, _ = scim.patch(f"Users/{uid}", patch_op({"op": "remove", "path": "groups"}))
    assert (status, error["scimType"]) == (400, "mutability")
    assert scim.put(f"Users/{uid}", {**user("member"), "groups": [{"value": gid}, {"value": uid}]})[0] == 200
    assert rows(database, "SELECT group_id::text, person_id::text FROM group_members") == [(gid, uid)]
    schemas = {s["id"]: s for s in scim.get("Schemas")[1]["Resources"]}
    groups = next(a for a in schemas[USER]["attributes"] if a["name"] == "groups")
    assert groups["mutability"] == "readOnly" and {s["name"] for s in groups["subAttributes"]} == {
        "value", "display", "type", "$ref"}
