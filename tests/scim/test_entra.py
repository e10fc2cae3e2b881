"""Microsoft Entra ID's provisioning sequence, replayed through the real endpoints."""

from tests.support.factories import rows
from tests.support.scim import ENTERPRISE, GROUP, USER, make_token, patch_op


def entra_user(upn: str, object_id: str) -> dict:
    return {"schemas": [USER, ENTERPRISE], "externalId": object_id, "userName": upn, "active": True,
            "displayName": "Grace Hopper", "title": "Rear Admiral",
            "emails": [{"primary": True, "type": "work", "value": upn}],
            "name": {"formatted": "Grace Hopper", "familyName": "Hopper", "givenName": "Grace"},
            ENTERPRISE: {"employeeNumber": "1906", "department": "Navy"}}


def test_entra_sequence(client, database):
    from tests.support.scim import Scim

    entra = Scim(client, make_token(database, "entra"))
    # Entra probes with filters on userName, externalId and the work e-mail.
    assert entra.get('Users?filter=userName eq "grace@contoso.com"')[1]["totalResults"] == 0
    status, user, _ = entra.post("Users", entra_user("grace@contoso.com", "e-1"))
    assert status == 201, user
    uid = user["id"]
    for query in ('externalId eq "e-1"', 'emails[type eq "work"].value eq "grace@contoso.com"',
                  'userName eq "Grace@Contoso.com"'):
        assert entra.get(f"Users?filter={query}")[1]["totalResults"] == 1, query
    # The manager arrives in its own PATCH, as a plain string; later removed.
    boss = entra.post("Users", entra_user("boss@contoso.com", "e-2") | {ENTERPRISE: {"employeeNumber": "1"}})[1]["id"]
    status, body, _ = entra.patch(f"Users/{uid}", patch_op(
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": boss}))
    assert status == 200 and body[ENTERPRISE]["manager"]["value"] == boss
    status, body, _ = entra.patch(f"Users/{uid}", patch_op({"op": "Remove", "path": f"{ENTERPRISE}:manager"}))
    assert status == 200 and "manager" not in body.get(ENTERPRISE, {})
    # Capitalized ops and string booleans; periodic active: true must succeed.
    status, body, _ = entra.patch(f"Users/{uid}", patch_op(
        {"op": "Replace", "path": "displayName", "value": "Amazing Grace"},
        {"op": "Replace", "path": "active", "value": "True"}))
    assert status == 200 and body["displayName"] == "Amazing Grace" and body["active"] is True
    # Deactivation, sometimes sent as op Add with a string boolean.
    status, body, _ = entra.patch(f"Users/{uid}", patch_op({"op": "Add", "path": "active", "value": "False"}))
    assert status == 200 and body["active"] is False
    assert rows(database, "SELECT active FROM people WHERE id = %s", (uid,)) == [(False,)]
    # Groups: filter by displayName without members; PATCH answered 204.
    status, group, _ = entra.post("Groups", {"schemas": [GROUP], "displayName": "Engineers", "externalId": "g-1"})
    assert status == 201
    status, found, _ = entra.get('Groups?filter=displayName eq "engineers"&excludedAttributes=members')
    assert found["totalResults"] == 1 and "members" not in found["Resources"][0]
    status, _, _ = entra.patch(f"Groups/{group['id']}", patch_op(
        {"op": "Add", "path": "members", "value": [{"value": boss}]}))
    assert status == 204
    status, _, _ = entra.patch(f"Groups/{group['id']}", patch_op(
        {"op": "Remove", "path": "members", "value": [{"value": boss}]}))
    assert status == 204
    assert entra.get(f"Groups/{group['id']}")[1].get("members", []) == []
