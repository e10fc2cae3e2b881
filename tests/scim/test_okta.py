"""Okta's provisioning sequence, replayed through the real endpoints (as Okta's SCIM docs describe it)."""

from tests.support.factories import rows
from tests.support.scim import GROUP, PATCH_OP, USER, patch_op


def okta_user(login: str, **extra) -> dict:
    user = {"schemas": [USER], "userName": login, "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"primary": True, "value": login, "type": "work"}], "displayName": "Ada Lovelace",
            "locale": "en-US", "externalId": "00u1abcd", "groups": [], "password": "1mP0ssible!", "active": True}
    user.update(extra)
    return user


def seed_grant(database, person_id: str, key: str = "vpn") -> None:
    rows(database, "INSERT INTO resources (key, name, kind) VALUES (%s, %s, 'vpn') ON CONFLICT DO NOTHING "
                         "RETURNING id", (key, key.upper()))
    rows(database, "INSERT INTO grants (person_id, resource_id, state, granted_by) SELECT %s, id, 'active', "
                         "'test' FROM resources WHERE key = %s RETURNING id", (person_id, key))


def test_okta_full_sequence(scim, database):
    # 1. Connection test.
    status, body, _ = scim.get("Users?startIndex=1&count=2")
    assert status == 200 and body["totalResults"] == 0 and body["Resources"] == [] and body["startIndex"] == 1
    # 2. Match: absent → 200 with totalResults 0.
    status, body, _ = scim.get('Users?filter=userName eq "ada@example.com"&startIndex=1&count=100')
    assert (status, body["totalResults"]) == (200, 0)
    # 3. Create, with externalId, active, password and groups: [].
    status, created, r = scim.post("Users", okta_user("ada@example.com"))
    assert status == 201, created
    assert r.headers["Location"] == created["meta"]["location"] and r.headers["ETag"] == created["meta"]["version"]
    assert r.headers["Content-Type"].startswith("application/scim+json")
    assert created["externalId"] == "00u1abcd" and created["active"] is True and "password" not in created
    person_id = created["id"]
    dump = str(rows(database, "SELECT p.*, j.* FROM people p, journal j"))
    assert "1mP0ssible!" not in dump  # accepted and discarded, never stored
    # 4. Match again: found.
    status, body, _ = scim.get('Users?filter=userName eq "ADA@example.com"&startIndex=1&count=100')
    assert body["totalResults"] == 1 and body["Resources"][0]["id"] == person_id
    # 5. Update: GET then PUT of the whole object.
    _, current, _ = scim.get(f"Users/{person_id}")
    current["name"]["familyName"] = "King"
    current["title"] = "Countess"
    status, updated, _ = scim.put(f"Users/{person_id}", current)
    assert status == 200 and updated["name"]["familyName"] == "King" and updated["title"] == "Countess"
    assert updated["meta"]["version"] != current["meta"]["version"]
    # 6. Deactivate: PATCH replace with no path (Okta never sends DELETE for users).
    seed_grant(database, person_id)
    status, body, _ = scim.patch(f"Users/{person_id}", patch_op({"op": "replace", "value": {"active": False}}))
    assert status == 200 and body["active"] is False
    assert rows(database, "SELECT state, reason FROM grants") == [("revoked", "leaver: deactivated")]
    outcome, detail = rows(database, "SELECT outcome, detail FROM journal WHERE subject = %s ORDER BY seq DESC "
                                           "LIMIT 1", (person_id,))[0]
    assert outcome == "deactivated" and detail["leaver"] is True and detail["revoked"] == ["vpn"]
    # Re-activation does not bring revoked grants back by itself.
    scim.patch(f"Users/{person_id}", patch_op({"op": "replace", "value": {"active": True}}))
    assert rows(database, "SELECT state FROM grants") == [("revoked",)]
    actors = {a for (a,) in rows(database, "SELECT DISTINCT actor FROM journal WHERE kind = 'sync'")}
    assert actors == {"client:okta"}


def test_okta_import_paging_is_stable(scim):
    ids = [scim.post("Users", okta_user(f"u{i}@example.com", externalId=f"00u{i}"))[1]["id"] for i in range(5)]
    seen = []
    for start in (1, 3, 5):
        status, page, _ = scim.get(f"Users?startIndex={start}&count=2")
        assert status == 200 and page["totalResults"] == 5 and page["startIndex"] == start
        seen += [r["id"] for r in page["Resources"]]
    assert seen == ids
    assert scim.get("Users?count=0")[1]["Resources"] == []


def test_okta_group_push(scim, database):
    a = scim.post("Users", okta_user("a@example.com", externalId="00ua"))[1]["id"]
    b = scim.post("Users", okta_user("b@example.com", externalId="00ub"))[1]["id"]
    status, group, _ = scim.post("Groups", {"schemas": [GROUP], "displayName": "VPN users", "members": [{"value": a}]})
    assert status == 201 and [m["value"] for m in group["members"]] == [a]
    gid = group["id"]
    status, _, _ = scim.patch(f"Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"id": gid, "displayName": "VPN people"}}]})
    assert status == 204
    status, _, _ = scim.patch(f"Groups/{gid}", patch_op({"op": "add", "path": "members", "value": [{"value": b}]}))
    assert status == 204
    status, _, _ = scim.patch(f"Groups/{gid}", patch_op({"op": "remove", "path": f'members[value eq "{a}"]'}))
    assert status == 204
    _, body, _ = scim.get(f"Groups/{gid}")
    assert body["displayName"] == "VPN people" and [m["value"] for m in body["members"]] == [b]
    assert scim.delete(f"Groups/{gid}")[0] == 204
    assert scim.get(f"Groups/{gid}")[0] == 404
    outcomes = [o for (o,) in rows(database, "SELECT outcome FROM journal WHERE detail->>'resource' = 'Group' "
                                                    "ORDER BY seq")]
    assert outcomes == ["created", "updated", "updated", "updated", "deleted"]


def test_manager_by_username_waits_for_the_manager(scim, database):
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    report = okta_user("r@example.com", externalId="00ur", schemas=[USER, ext],
                       **{ext: {"employeeNumber": "42", "manager": {"value": "boss@example.com"}}})
    rid = scim.post("Users", report)[1]["id"]
    assert rows(database, "SELECT manager_id, manager_ref FROM people WHERE id = %s", (rid,)) == [
        (None, "boss@example.com")]
    boss = scim.post("Users", okta_user("boss@example.com", externalId="00ub"))[1]["id"]
    (manager_id, ref), = rows(database, "SELECT manager_id::text, manager_ref FROM people WHERE id = %s", (rid,))
    assert (manager_id, ref) == (boss, None)
    assert scim.get(f"Users/{rid}")[1][ext]["manager"]["value"] == boss


def test_a_waiting_manager_reference_is_resolved_through_the_login_key(scim, database):
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    report = okta_user("r2@example.com", externalId="00ur2", schemas=[USER, ext],
                       **{ext: {"manager": {"value": "ＢＯＳＳ2 "}}})  # fullwidth, a trailing space: boss2
    rid = scim.post("Users", report)[1]["id"]
    assert rows(database, "SELECT manager_ref FROM people WHERE id = %s", (rid,)) == [("ＢＯＳＳ2 ",)]
    boss = scim.post("Users", okta_user("boss2", externalId="00ub2",
                                        emails=[{"value": "boss2@example.com", "primary": True}]))[1]["id"]
    assert rows(database, "SELECT manager_id::text, manager_ref FROM people WHERE id = %s", (rid,)) == [
        (boss, None)]
