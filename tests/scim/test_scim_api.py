"""SCIM protocol behaviour: discovery, errors (RFC 7644 §3.12), versions, projection, concurrency, joins."""

import json
import threading

import psycopg
import pytest

from service.access import store as grant_store
from tests.support.factories import rows
from tests.support.scim import ENTERPRISE, GROUP, USER, Scim, make_token, patch_op


def user(user_name: str, **extra) -> dict:
    return {"schemas": [USER], "userName": user_name, "active": True, **extra}


def test_discovery_tells_what_is_supported(scim):
    status, config, _ = scim.get("ServiceProviderConfig")
    assert status == 200 and config["patch"]["supported"] and not config["bulk"]["supported"]
    assert not config["sort"]["supported"] and config["etag"]["supported"] and config["filter"]["maxResults"] == 1000
    status, schemas, _ = scim.get("Schemas")
    ids = [s["id"] for s in schemas["Resources"]]
    assert ids == [USER, ENTERPRISE, "urn:ietf:params:scim:schemas:core:2.0:Group"]
    user_attrs = {a["name"] for a in schemas["Resources"][0]["attributes"]}
    assert "userName" in user_attrs and "addresses" not in user_attrs and "x509Certificates" not in user_attrs
    assert scim.get(f"Schemas/{ENTERPRISE}")[0] == 200
    status, types, _ = scim.get("ResourceTypes")
    assert [t["id"] for t in types["Resources"]] == ["User", "Group"]
    assert scim.get("ResourceTypes/Nope")[0] == 404


def test_rfc_7643_enterprise_user_round_trip(scim):
    body = {
        "schemas": [USER, ENTERPRISE],
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "active": True,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        ENTERPRISE: {"employeeNumber": "701984", "organization": "Universal Studios", "department": "Tour Operations"},
    }
    status, created, _ = scim.post("Users", body)
    assert status == 201
    assert created[ENTERPRISE] == {"employeeNumber": "701984", "organization": "Universal Studios",
                                   "department": "Tour Operations"}
    assert created["emails"][1] == {"value": "babs@jensen.org", "type": "home", "primary": False}
    meta = created["meta"]
    assert meta["resourceType"] == "User" and meta["created"] and meta["lastModified"]
    assert meta["location"].endswith(f"/scim/v2/Users/{created['id']}") and meta["version"].startswith('W/"')


def test_attributes_and_excluded_attributes(scim):
    uid = scim.post("Users", user("p@example.com", title="T", name={"givenName": "P", "familyName": "Q"}))[1]["id"]
    _, only, _ = scim.get(f"Users/{uid}?attributes=userName,name.givenName")
    assert only == {"schemas": [USER], "id": uid, "userName": "p@example.com", "name": {"givenName": "P"}}
    _, without, _ = scim.get(f"Users/{uid}?excludedAttributes=title,meta")
    assert "title" not in without and "meta" not in without and without["userName"] == "p@example.com"
    _, listed, _ = scim.get("Users?attributes=userName")
    assert listed["Resources"] == [{"schemas": [USER], "id": uid, "userName": "p@example.com"}]


def test_search_endpoint(scim):
    scim.post("Users", user("s1@example.com"))
    scim.post("Users", user("s2@example.com"))
    status, found, _ = scim.post("Users/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                                   "filter": 'userName sw "s2"', "attributes": ["userName"]})
    assert status == 200 and [r["userName"] for r in found["Resources"]] == ["s2@example.com"]


def test_etag_if_match(scim, database):
    _, created, _ = scim.post("Users", user("e@example.com"))
    uid, etag = created["id"], created["meta"]["version"]
    status, body, _ = scim.put(f"Users/{uid}", user("e@example.com", title="new"), headers={"If-Match": 'W/"999"'})
    assert status == 412 and body["status"] == "412"
    assert rows(database, "SELECT title FROM people") == [(None,)]
    status, body, r = scim.put(f"Users/{uid}", user("e@example.com", title="new"), headers={"If-Match": etag})
    assert status == 200 and r.headers["ETag"] != etag
    assert scim.get(f"Users/{uid}", headers={"If-None-Match": r.headers["ETag"]})[0] == 304


def test_put_without_active_keeps_it(scim):
    uid = scim.post("Users", user("k@example.com", active=False))[1]["id"]
    status, body, _ = scim.put(f"Users/{uid}", {"schemas": [USER], "userName": "k@example.com", "title": "x"})
    assert status == 200 and body["active"] is False


@pytest.mark.parametrize("method, path, payload, status, scim_type", [
    ("POST", "Users", {"schemas": [USER]}, 400, "invalidValue"),
    ("POST", "Users", {"schemas": [USER], "userName": "x@example.com", "active": "maybe"}, 400, "invalidValue"),
    ("POST", "Users", None, 400, "invalidSyntax"),
    ("GET", 'Users?filter=userName eq', None, 400, "invalidFilter"),
    ("GET", 'Users?filter=nosuchattr eq "x"', None, 400, "invalidFilter"),
    ("GET", "Users?startIndex=one", None, 400, "invalidValue"),
    ("GET", "Users/00000000-0000-0000-0000-000000000000", None, 404, None),
    ("GET", "Users/not-a-uuid", None, 404, None),
    ("GET", "Groups/00000000-0000-0000-0000-000000000000", None, 404, None),
    ("GET", "Nope", None, 404, None),
])
def test_errors_have_the_scim_shape(scim, method, path, payload, status, scim_type):
    raw = b"{not json" if payload is None and method == "POST" else None
    got, body, r = scim.call(method, path, payload, raw=raw)
    assert got == status, body
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert r.headers["Content-Type"].startswith("application/scim+json")


def test_uniqueness_mutability_no_target_invalid_path(scim, database):
    _, created, _ = scim.post("Users", user("u@example.com"))
    uid = created["id"]
    status, body, _ = scim.post("Users", user("U@EXAMPLE.com"))
    assert (status, body["scimType"]) == (409, "uniqueness")
    status, body, _ = scim.put(f"Users/{uid}", {"schemas": [USER], "id": "other", "userName": "u@example.com"})
    assert (status, body["scimType"]) == (400, "mutability")
    status, body, _ = scim.patch(f"Users/{uid}", patch_op({"op": "replace", "path": "id", "value": "x"}))
    assert (status, body["scimType"]) == (400, "mutability")
    status, body, _ = scim.patch(f"Users/{uid}", patch_op({"op": "remove", "path": 'emails[type eq "home"]'}))
    assert (status, body["scimType"]) == (400, "noTarget")
    status, body, _ = scim.patch(f"Users/{uid}", patch_op({"op": "replace", "path": "nosuch.thing", "value": 1}))
    assert (status, body["scimType"]) == (400, "invalidPath")
    assert rows(database, "SELECT version FROM people") == [(1,)]  # nothing changed


def test_a_primary_email_taken_by_another_live_person_is_409_uniqueness(scim, database):
    def emails(value):
        return [{"value": value, "type": "work", "primary": True}]

    ann = scim.post("Users", user("ann", externalId="1", emails=emails("ann@example.com")))[1]["id"]
    status, body, _ = scim.post("Users", user("anna", externalId="2", emails=emails("ANN@example.com")))
    assert (status, body["scimType"]) == (409, "uniqueness") and "primary e-mail 'ANN@example.com'" in body["detail"]
    bob = scim.post("Users", user("bob", externalId="3", emails=emails("bob@example.com")))[1]["id"]
    status, body, _ = scim.patch(f"Users/{bob}", patch_op({"op": "replace", "path": "emails",
                                                            "value": emails("Ann@Example.com")}))
    assert (status, body["scimType"]) == (409, "uniqueness")
    status, _, _ = scim.put(f"Users/{bob}", user("bob", externalId="3", emails=emails("ann@example.com")))
    assert status == 409
    assert rows(database, "SELECT user_name, primary_email, version FROM people ORDER BY user_name") == [
        ("ann", "ann@example.com", 1), ("bob", "bob@example.com", 1)]
    assert rows(database, "SELECT outcome FROM journal WHERE kind = 'sync' ORDER BY seq") == [
        ("created",), ("created",)]
    assert scim.delete(f"Users/{ann}")[0] == 204  # a leaver's address is free for the next person
    assert scim.post("Users", user("anna", externalId="2", emails=emails("ann@example.com")))[0] == 201


def test_too_many(scim):
    many = " or ".join(f'userName eq "u{i}"' for i in range(100))
    status, body, _ = scim.get(f"Users?filter={many}")
    assert (status, body["scimType"]) == (400, "tooMany")
    status, body, _ = scim.post("Users/.search", {"filter": 'userName eq "' + "x" * 5000 + '"'})
    assert (status, body["scimType"]) == (400, "tooMany")


@pytest.mark.parametrize("many", [
    " or ".join(["emails pr"] * 310),  # presence tests bind no parameter
    " or ".join(['id eq "x"'] * 300),  # nor does an id that is no uuid
    " or ".join(['emails[type eq "work" and value pr]'] * 40),  # two comparisons inside each value path
    " or ".join(['emails[type eq "work"].value eq "x"'] * 40),
])
def test_too_many_counts_comparisons_not_parameters(scim, many):
    scim.post("Users", user("t@example.com", emails=[{"value": "t@example.com", "type": "work"}]))
    for status, body, _ in (scim.get(f"Users?filter={many}"), scim.post("Users/.search", {"filter": many})):
        assert (status, body["scimType"]) == (400, "tooMany"), body
        assert "64 comparisons" in body["detail"]


def test_a_filter_of_64_comparisons_is_evaluated(scim):
    scim.post("Users", user("t@example.com", emails=[{"value": "t@example.com", "type": "work"}]))
    status, body, _ = scim.get("Users?filter=" + " or ".join(['emails[type eq "work" and value pr]'] * 32))
    assert status == 200 and body["totalResults"] == 1


def test_content_types(scim):
    for kind in ("application/scim+json", "application/json", "text/json", "application/scim+json; charset=utf-8"):
        status, _, _ = scim.post("Users", user(f"ct{len(kind)}@example.com"), content_type=kind)
        assert status == 201, kind
    status, body, _ = scim.post("Users", user("x@example.com"), content_type="text/plain")
    assert status == 415 and body["status"] == "415"


def test_body_limit_is_413(scim):
    status, body, _ = scim.post("Users", user("big@example.com", title="x" * 2_000_000))
    assert status == 413 and body["status"] == "413"


def test_auth_refusals_are_scim_errors_and_journaled(client, database, scim):
    status, body, r = scim.get("Users", token=None)
    assert status == 401 and body["status"] == "401" and r.headers["WWW-Authenticate"].startswith("Bearer")
    checker = Scim(client, make_token(database, "gateway", scopes=("access:check",)))
    status, body, _ = checker.get("Users")
    assert status == 403 and body["status"] == "403"
    client.application.extensions["gatehouse"].refusals.flush(everything=True)  # no token: counted
    refused = rows(database, "SELECT actor FROM journal WHERE outcome = 'refused' ORDER BY seq")
    assert refused == [("client:gateway",), ("anonymous",)]


def test_two_creates_of_the_same_username_at_once(client, database):
    token = make_token(database, "okta")
    results = []

    def create():
        results.append(Scim(client.application.test_client(), token).post("Users", user("twin@example.com"))[0])

    threads = [threading.Thread(target=create) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201, 409]
    assert rows(database, "SELECT count(*) FROM people") == [(1,)]


def test_a_person_known_from_ldap_is_joined_not_duplicated(scim, database):
    rows(database, "INSERT INTO people (user_name, primary_email, emails, source, department) VALUES "
                         "('jdoe', 'jane@example.com', '[{\"value\": \"jane@example.com\"}]', 'ldap', 'R&D') "
                         "RETURNING id")
    status, body, _ = scim.post("Users", user("jane@example.com", externalId="00uj",
                                              emails=[{"value": "jane@example.com", "type": "work", "primary": True}]))
    assert status == 201
    found = rows(database, "SELECT user_name, source, attribute_sources->>'user_name' FROM people")
    assert found == [("jane@example.com", "ldap", "scim:okta")]
    assert rows(database, "SELECT source, external_id FROM person_external_ids") == [("scim:okta", "00uj")]
    assert rows(database, "SELECT outcome FROM journal") == [("joined",)]


def _grant(database, user_name: str, resource: str, state: str = "active", reason: str | None = None) -> None:
    """A grant made the way an admin makes one (store.grants.grant), then put in the state wanted."""
    with psycopg.connect(database.app_url) as conn:
        change = grant_store.grant(conn, user_name, resource, by="test")
        conn.execute("UPDATE grants SET state = %s, reason = %s WHERE person_id = %s AND resource_id = "
                     "(SELECT id FROM resources WHERE key = %s)", (state, reason, change.person_id, resource))


def test_delete_is_a_soft_delete_and_a_leaver(client, scim, database):
    rows(database, "INSERT INTO resources (key, name, kind) VALUES ('wiki', 'Wiki', 'tool'), "
                         "('git', 'Git', 'tool') ON CONFLICT (key) DO NOTHING RETURNING 1")
    uid = scim.post("Users", user("gone@example.com"))[1]["id"]
    other = scim.post("Users", user("stays@example.com"))[1]["id"]
    _grant(database, "gone@example.com", "vpn")
    _grant(database, "gone@example.com", "wiki", "suspended", "training_lapsed:security-awareness")
    _grant(database, "gone@example.com", "git", "revoked", "moved team")
    _grant(database, "stays@example.com", "vpn")
    assert scim.delete(f"Users/{uid}")[0] == 204
    assert scim.get(f"Users/{uid}")[0] == 404
    assert scim.get('Users?filter=userName eq "gone@example.com"')[1]["totalResults"] == 0
    assert rows(database, "SELECT id::text, active, deleted_at IS NOT NULL FROM people ORDER BY user_name") == [
        (uid, False, True), (other, True, False)]
    grant_rows = "SELECT p.user_name, r.key, g.state, g.reason FROM grants g JOIN people p ON p.id = g.person_id " \
                 "JOIN resources r ON r.id = g.resource_id ORDER BY 1, 2"
    assert rows(database, grant_rows) == [  # every live grant revoked; an earlier revocation keeps its reason
        ("gone@example.com", "git", "revoked", "moved team"),
        ("gone@example.com", "vpn", "revoked", "leaver: deleted"),
        ("gone@example.com", "wiki", "revoked", "leaver: deleted"),
        ("stays@example.com", "vpn", "active", None)]
    (kind, actor, subject, detail), = rows(
        database, "SELECT kind, actor, subject, detail FROM journal WHERE outcome = 'deleted'")
    assert (kind, actor, subject) == ("sync", "client:okta", uid)
    assert detail == {"resource": "User", "user_name": "gone@example.com", "leaver": True, "revoked": ["vpn", "wiki"]}
    gateway = {"Authorization": f"Bearer {make_token(database, 'gw', scopes=('access:check',))}"}
    answer = client.post("/api/v1/access/check", json={"user": "gone@example.com", "resource": "vpn"}, headers=gateway)
    assert answer.status_code == 200 and answer.json["allow"] is False


# PostgreSQL text holds no NUL and UTF-8 encodes no lone surrogate: both were a DataError or a
# UnicodeEncodeError, that is a 500, from whichever query met them first.
UNSTORABLE = ["a\u0000b", "\u0000", "\ud800", "x\udfffy"]


def _bodies(bad: str, uid: str, gid: str) -> list[tuple[str, str, object]]:
    return [
        ("POST", "Users", user(bad)),
        ("POST", "Users", user("x@example.com", title=bad)),
        ("POST", "Users", user("x@example.com", emails=[{"value": "x@example.com", "type": bad}])),
        ("POST", "Users", {**user("x@example.com"), ENTERPRISE: {"employeeNumber": bad}}),
        ("POST", "Users", {**user("x@example.com"), bad: "a key"}),
        ("PUT", f"Users/{uid}", user("n@example.com", displayName=bad)),
        ("PATCH", f"Users/{uid}", patch_op({"op": "replace", "path": "title", "value": bad})),
        ("PATCH", f"Users/{uid}", patch_op({"op": "replace", "value": {"name.givenName": bad}})),
        ("PATCH", f"Users/{uid}", patch_op({"op": "add", "path": "emails", "value": [{"value": bad}]})),
        ("POST", "Groups", {"schemas": [GROUP], "displayName": bad}),
        ("PUT", f"Groups/{gid}", {"schemas": [GROUP], "displayName": "staff", "externalId": bad}),
        ("PATCH", f"Groups/{gid}", patch_op({"op": "replace", "path": "displayName", "value": bad})),
        ("PATCH", f"Groups/{gid}", patch_op({"op": "add", "path": "members", "value": [{"value": bad}]})),
        ("POST", "Users/.search", {"filter": "userName pr", "attributes": [bad]}),
    ]


def _state(database) -> list:
    return [rows(database, "SELECT id, version, user_name, title, display_name, emails FROM people ORDER BY id"),
            rows(database, "SELECT id, display_name, external_id FROM groups ORDER BY id"),
            rows(database, "SELECT count(*) FROM group_members"),
            rows(database, "SELECT count(*) FROM journal")]


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_a_nul_or_lone_surrogate_in_a_body_is_a_400_and_changes_nothing(scim, database, bad):
    uid = scim.post("Users", user("n@example.com"))[1]["id"]
    gid = scim.post("Groups", {"schemas": [GROUP], "displayName": "staff", "members": [{"value": uid}]})[1]["id"]
    before = _state(database)
    for method, path, body in _bodies(bad, uid, gid):
        status, answer, r = scim.call(method, path, body)  # json.dumps sends NUL as \u0000, a surrogate as \ud800
        assert (status, answer["status"], answer.get("scimType")) == (400, "400", "invalidValue"), (method, path)
        assert answer["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert r.headers["Content-Type"].startswith("application/scim+json")
        assert "cannot be stored" in answer["detail"]
    assert _state(database) == before


def test_a_raw_nul_byte_in_a_utf8_body_is_refused_too(scim, database):
    before = _state(database)
    for raw in (b'{"schemas": ["' + USER.encode() + b'"], "userName": "a\x00b"}',  # invalid JSON: a raw control
                b'{"schemas": ["' + USER.encode() + b'"], "userName": "a\xed\xa0\x80b"}'):  # a surrogate in bytes
        status, answer, _ = scim.call("POST", "Users", raw=raw)
        assert status == 400 and answer["scimType"] in ("invalidSyntax", "invalidValue"), answer
    assert _state(database) == before


@pytest.mark.parametrize(("query", "scim_type"), [
    ('Users?filter=userName eq "\\u0000"', "invalidFilter"),  # the JSON escape inside the filter's string
    ('Users?filter=userName eq "\\ud800"', "invalidFilter"),
    ('Users?filter=emails[value co "a\\u0000"]', "invalidFilter"),
    ('Users?filter=userName eq "%00"', "invalidFilter"),  # a raw NUL in the query string
    ("Users?filter=userName pr&attributes=user%00Name", "invalidValue"),
    ("Users?startIndex=1%00", "invalidValue"),
    ("Groups?filter=displayName eq \"%00\"", "invalidFilter"),
    ("Users/%00", "invalidValue"),
])
def test_a_nul_in_a_filter_or_query_string_is_a_400(scim, database, query, scim_type):
    scim.post("Users", user("q@example.com"))
    before = _state(database)
    status, answer, r = scim.get(query)
    assert (status, answer.get("scimType")) == (400, scim_type), answer
    assert answer["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    status, answer, _ = scim.post("Users/.search", {"filter": 'userName eq "a\u0000"'})
    assert (status, answer.get("scimType")) == (400, "invalidFilter"), answer
    assert _state(database) == before


UNSTORED_NAMES = ("phoneNumbers", "addresses", "preferredLanguage", "nickName", "middleName", "costCenter")


def test_core_attributes_gatehouse_does_not_store_are_accepted_dropped_and_never_echoed(scim, database):
    """Entra's default mappings send these on POST, PUT and PATCH: 2xx, only the stored fields change."""
    unstored = {"phoneNumbers": [{"value": "+1 555 0100", "type": "work"}], "preferredLanguage": "en-US",
                "addresses": [{"type": "work", "locality": "Redmond"}], "nickName": "Babs"}
    status, created, _ = scim.post("Users", {
        **user("babs@example.com", title="Guide", name={"givenName": "Barbara", "middleName": "J"}), **unstored,
        "schemas": [USER, ENTERPRISE], ENTERPRISE: {"costCenter": "4130", "department": "Tours"}})
    assert status == 201
    uid = created["id"]
    # The row's own words, not its generated id and instants (a uuid or microseconds may hold "555" by chance).
    stored = ("SELECT user_name, given_name, title, department, version, "
              "to_jsonb(p) - 'id' - 'started_at' - 'created_at' - 'updated_at' FROM people p WHERE id = %s")
    (name, given, title, department, version, row), = rows(database, stored, (uid,))
    assert (name, given, title, department, version) == ("babs@example.com", "Barbara", "Guide", "Tours", 1)
    for op in [{"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "+1 555 0199"},
               {"op": "Replace", "path": 'addresses[type eq "work"].locality', "value": "Seattle"},
               {"op": "Replace", "path": "preferredLanguage", "value": "fr-CA"},
               {"op": "replace", "value": {"nickName": "B", "name.middleName": "K"}},
               {"op": "add", "path": f"{ENTERPRISE}:costCenter", "value": "4131"}]:
        status, patched, _ = scim.patch(f"Users/{uid}", patch_op(op))
        assert status == 200, patched
        assert not _mentions(patched, UNSTORED_NAMES), patched
    status, replaced, _ = scim.put(f"Users/{uid}", {
        **user("babs@example.com", title="Guide", name={"givenName": "Barbara", "middleName": "L"}), **unstored,
        "schemas": [USER, ENTERPRISE], ENTERPRISE: {"costCenter": "4132", "department": "Tours"}})
    assert status == 200 and not _mentions(replaced, UNSTORED_NAMES), replaced
    for body in (created, scim.get(f"Users/{uid}")[1], *scim.get("Users")[1]["Resources"]):
        assert not _mentions(body, UNSTORED_NAMES), body
    assert rows(database, stored, (uid,)) == [("babs@example.com", "Barbara", "Guide", "Tours", 1, row)]
    assert not _mentions(row, ("Redmond", "Seattle", "555", "en-US", "fr-CA", "Babs", "4130", "4131", "4132"))
    assert rows(database, "SELECT outcome FROM journal ORDER BY seq") == [("created",)]  # nothing changed


def _mentions(value, words) -> list:
    text = json.dumps(value)
    return [w for w in words if w in text]


def test_addresses_of_special_use_domains_directories_use_are_accepted(scim, database):
    """corp.local, .internal and .test (RFC 6761 special-use names) are real directory domains; syntax still counts."""
    def emails(*values):
        return [{"value": v, "type": "work", "primary": i == 0} for i, v in enumerate(values)]

    addresses = emails("ann@corp.local", "ann@hr.internal")
    status, body, _ = scim.post("Users", user("ann", externalId="1", emails=addresses))
    assert status == 201, body
    assert [e["value"] for e in body["emails"]] == ["ann@corp.local", "ann@hr.internal"]
    status, body, _ = scim.patch(f"Users/{body['id']}", patch_op({"op": "replace", "path": "emails",
                                                                   "value": emails("ann@lab.test")}))
    assert status == 200, body
    assert rows(database, "SELECT user_name, primary_email FROM people") == [("ann", "ann@lab.test")]
    for bad in ("ann@", "ann@@corp.local", "ann at corp.local", "ann@corp..local"):
        status, body, _ = scim.post("Users", user("bob", externalId="2", emails=emails(bad)))
        assert (status, body["scimType"]) == (400, "invalidValue"), (bad, body)
    assert rows(database, "SELECT count(*) FROM people") == [(1,)]
