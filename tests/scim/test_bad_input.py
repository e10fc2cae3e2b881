"""No SCIM input is a 500: every string attribute is checked before SQL, and database refusals map to SCIM errors."""

import random

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.errors import BadRequest, Conflict
from service.identity import groups, people
from tests.support.factories import rows
from tests.support.scim import ENTERPRISE, GROUP, USER, patch_op

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def user(user_name: str, **extra) -> dict:
    return {"schemas": [USER, ENTERPRISE], "userName": user_name, **extra}


def _counts(database):
    return rows(database, "SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM groups), "
                                "(SELECT count(*) FROM journal)")[0]


@pytest.mark.parametrize("body, detail", [
    (user("z" * 257), "userName is limited to 256 characters"),
    (user("zoe\u200b"), "userName contains a control or invisible formatting character"),
    (user("   "), "userName must not be blank"),
    (user("zoe", displayName="Zoe\x07"), "displayName contains a control character"),
    (user("zoe", title="a\nb"), "title contains a control character"),
    (user("zoe", name={"givenName": "x" * 300}), "name.givenName is limited to 256 characters"),
    (user("zoe", emails=[{"value": "z@example.com", "type": "w\x1b"}]), "emails.type contains a control character"),
    (user("zoe", **{ENTERPRISE: {"employeeNumber": "é" * 3000}}), "employeeNumber is limited to 256 characters"),
    (user("zoe", externalId="x" * 513), "externalId is limited to 512 characters"),
])
def test_a_string_too_long_or_with_a_control_character_is_invalid_value_and_changes_nothing(scim, database, body,
                                                                                            detail):
    before = _counts(database)
    status, answer, _ = scim.post("Users", body)
    assert (status, answer["scimType"], answer["detail"]) == (400, "invalidValue", detail)
    assert _counts(database) == before


def test_a_long_group_name_or_member_display_is_invalid_value(scim, database):
    _, person, _ = scim.post("Users", user("zoe"))
    before = _counts(database)
    status, answer, _ = scim.post("Groups", {"schemas": [GROUP], "displayName": "g" * 257})
    assert (status, answer["scimType"]) == (400, "invalidValue"), answer
    status, answer, _ = scim.post("Groups", {"schemas": [GROUP], "displayName": "eng",
                                             "members": [{"value": person["id"], "display": "\x00"}]})
    assert (status, answer["scimType"]) == (400, "invalidValue"), answer
    assert _counts(database) == before


_RANDOM = random.Random(7)
_INCOMPRESSIBLE = "".join(chr(0x4E00 + _RANDOM.randrange(20000)) for _ in range(3000))  # 9000 bytes


def test_database_refusals_are_named_by_constraint_never_raised_raw(database):
    """What the SCIM checks keep from the database must still not be a 500 if another writer sends it."""
    with psycopg.connect(database.app_url) as conn:
        with pytest.raises(BadRequest, match="userName must be 1 to 256 characters"):
            people.create(conn, people.Fields(user_name="z" * 300), source="scim", ext_source="scim:x")
    with psycopg.connect(database.app_url) as conn:  # too big for the btree entry of people_employee_number_key
        with pytest.raises(BadRequest, match=r"a value cannot be stored \(54000\)"):
            people.create(conn, people.Fields(user_name="zoe", employee_number=_INCOMPRESSIBLE), source="scim",
                          ext_source="scim:x")
    with psycopg.connect(database.app_url) as conn:
        with pytest.raises(BadRequest, match="displayName must be 1 to 256 characters"):
            groups.create(conn, display_name="g" * 300, external_id=None, members=[], source="scim")
    with psycopg.connect(database.app_url) as conn:
        people.create(conn, people.Fields(user_name="Zoe"), source="scim", ext_source="scim:x")
    with psycopg.connect(database.app_url) as conn:
        with pytest.raises(Conflict, match="userName 'ＺＯＥ ' is already taken") as taken:
            people.create(conn, people.Fields(user_name="ＺＯＥ "), source="scim", ext_source="scim:x")
        assert taken.value.code == "uniqueness"


# Every string attribute a client may send, as (path in a POST/PUT body, PATCH path, PATCH value of v).
_USER_ATTRIBUTES = [
    (("userName",), "userName", lambda v: v),
    (("name", "givenName"), "name.givenName", lambda v: v),
    (("name", "familyName"), "name.familyName", lambda v: v),
    (("name", "formatted"), "name.formatted", lambda v: v),
    (("displayName",), "displayName", lambda v: v),
    (("nickName",), "nickName", lambda v: v),
    (("title",), "title", lambda v: v),
    (("externalId",), "externalId", lambda v: v),
    (("password",), "password", lambda v: v),
    (("emails",), "emails", lambda v: [{"value": v, "type": "work"}]),
    (("emails",), 'emails[type eq "work"].value', lambda v: [{"value": "a@example.com", "type": v}]),
    ((ENTERPRISE, "employeeNumber"), f"{ENTERPRISE}:employeeNumber", lambda v: v),
    ((ENTERPRISE, "department"), f"{ENTERPRISE}:department", lambda v: v),
    ((ENTERPRISE, "organization"), f"{ENTERPRISE}:organization", lambda v: v),
    ((ENTERPRISE, "manager"), f"{ENTERPRISE}:manager", lambda v: {"value": v}),
]

_TEXT = (st.text(max_size=40)
         | st.builds(lambda c, n: c * n, st.characters(), st.integers(200, 3000))
         | st.sampled_from(["\x00", "\ud800", "a\u200bb", " ", "é" * 257, "\u0301", "ＺＯＥ", "x\x7f"]))


def _is_scim_answer(status: int, answer) -> bool:
    if 200 <= status < 300:
        return True
    return 400 <= status < 500 and answer["schemas"] == [ERROR] and answer["status"] == str(status)


def _nested(path: tuple, value) -> dict:
    return {path[0]: value} if len(path) == 1 else {path[0]: _nested(path[1:], value)}


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attribute=st.sampled_from(_USER_ATTRIBUTES), method=st.sampled_from(["POST", "PUT", "PATCH"]), text=_TEXT)
@example(attribute=_USER_ATTRIBUTES[0], method="POST", text="z" * 300)  # was a CHECK violation: a 500
@example(attribute=_USER_ATTRIBUTES[11], method="PUT", text="é" * 3000)  # too big for its index entry: a 500
def test_no_string_in_a_user_body_is_a_500(scim, text, attribute, method):
    body_path, patch_path, patch_value = attribute
    value = patch_value(text) if body_path[0] == "emails" else text
    if body_path[-1] == "manager":
        value = {"value": text}
    body = {"userName": "someone", **_nested(body_path, value)} if body_path != ("userName",) else {"userName": text}
    body["schemas"] = [USER, ENTERPRISE]
    if method == "POST":
        body.setdefault("userName", "x")
        if body_path != ("userName",):
            body["userName"] = f"new-{abs(hash((text, patch_path)))}"
        status, answer, _ = scim.post("Users", body)
    else:
        _, existing, _ = scim.post("Users", user(f"base-{abs(hash((text, patch_path, method)))}"))
        target = f"Users/{existing['id']}"
        if method == "PUT":
            body["userName"] = text if body_path == ("userName",) else existing["userName"]
            status, answer, _ = scim.put(target, body)
        else:
            status, answer, _ = scim.patch(target, patch_op({"op": "replace", "path": patch_path,
                                                             "value": patch_value(text)}))
    assert _is_scim_answer(status, answer), (status, answer)


_GROUP_ATTRIBUTES = ["displayName", "externalId", "members.value", "members.display"]


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attribute=st.sampled_from(_GROUP_ATTRIBUTES), method=st.sampled_from(["POST", "PUT", "PATCH"]), text=_TEXT)
@example(attribute="displayName", method="POST", text="g" * 300)  # was a CHECK violation: a 500
def test_no_string_in_a_group_body_is_a_500(scim, text, attribute, method):
    status, person, _ = scim.post("Users", user("member"))
    if status == 409:  # made by an earlier example
        person = scim.get('Users?filter=userName eq "member"')[1]["Resources"][0]
    name = f"g-{abs(hash((text, attribute, method)))}"
    if attribute.startswith("members."):
        member = {"value": person["id"], "display": "Member", attribute.split(".")[1]: text}
        values = {"displayName": name, "members": [member]}
    else:
        values = {"displayName": name, attribute: text}
    if method == "POST":
        status, answer, _ = scim.post("Groups", {"schemas": [GROUP], **values})
    else:
        _, existing, _ = scim.post("Groups", {"schemas": [GROUP], "displayName": name + "-base"})
        if method == "PUT":
            status, answer, _ = scim.put(f"Groups/{existing['id']}", {"schemas": [GROUP], **values})
        else:
            status, answer, _ = scim.patch(f"Groups/{existing['id']}", patch_op({"op": "replace", "value": values}))
    assert _is_scim_answer(status, answer), (status, answer)
