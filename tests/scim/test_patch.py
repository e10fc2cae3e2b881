"""SCIM PATCH over plain resource dicts: RFC 7644 §3.5.2, and the requests Okta and Entra ID really send."""

import copy

import pytest

from service.scim.patch import ENTERPRISE, PATCH_OP, PatchError, apply_patch

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
UID = "2819c223-7f76-453a-919d-413861904646"
GID = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"
BOSS = "26118915-6090-4610-87e4-49d8ca9f808d"
ALICE = "902c246b-6245-4190-8e05-00816be7344a"
BOB = "3b6f2a1c-9d1e-4c55-8c8f-6d2e7a4b1f00"


def user() -> dict:
    return {
        "schemas": [CORE_USER],
        "id": UID,
        "externalId": "bjensen",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "active": True,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        "groups": [{"value": GID, "display": "Tour Guides"}],
        "meta": {"resourceType": "User", "version": 'W/"1"'},
    }


def group() -> dict:
    return {
        "schemas": [CORE_GROUP],
        "id": GID,
        "displayName": "Tour Guides",
        "members": [{"value": ALICE, "display": "alice"}],
        "meta": {"resourceType": "Group", "version": 'W/"1"'},
    }


def patch(resource: dict, *operations, kind: str = "User") -> dict:
    return apply_patch(resource, {"schemas": [PATCH_OP], "Operations": list(operations)}, kind=kind)


def fails(scim_type: str, resource: dict, *operations, kind: str = "User") -> PatchError:
    with pytest.raises(PatchError) as caught:
        patch(resource, *operations, kind=kind)
    assert (caught.value.status, caught.value.scim_type) == (400, scim_type), caught.value.detail
    return caught.value


# The message (RFC 7644 §3.5.2)

@pytest.mark.parametrize("body", [
    {"Operations": [{"op": "replace", "path": "title", "value": "x"}]},
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": [{"op": "add", "value": {}}]},
    {"schemas": [PATCH_OP]},
    {"schemas": [PATCH_OP], "Operations": []},
    {"schemas": [PATCH_OP], "Operations": {"op": "add"}},
    {"schemas": [PATCH_OP], "Operations": ["add"]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "move", "path": "title"}]},
    {"schemas": [PATCH_OP], "Operations": [{"path": "title", "value": "x"}]},
    [],
])
def test_a_malformed_message_is_invalid_syntax(body):
    with pytest.raises(PatchError) as caught:
        apply_patch(user(), body, kind="User")
    assert caught.value.scim_type == "invalidSyntax"
    assert caught.value.body()["status"] == "400"


def test_ops_and_message_members_match_in_any_case():
    body = {"SCHEMAS": [PATCH_OP], "operations": [
        {"OP": "Replace", "Path": "title", "Value": "Lead"},
        {"op": "ADD", "path": "externalId", "value": "bj"},
        {"op": "Remove", "path": "displayName"},
    ]}
    got = apply_patch(user(), body, kind="User")
    assert (got["title"], got["externalId"], "displayName" in got) == ("Lead", "bj", False)


def test_the_resource_passed_in_is_left_alone_and_a_failed_patch_changes_nothing():
    before = user()
    kept = copy.deepcopy(before)
    patch(before, {"op": "replace", "path": "name.givenName", "value": "Babs"})
    fails("mutability", before, {"op": "replace", "path": "title", "value": "x"}, {"op": "remove", "path": "userName"})
    assert before == kept


def test_an_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        apply_patch(user(), {"schemas": [PATCH_OP], "Operations": [{"op": "add", "value": {}}]}, kind="Person")


# Without a path (RFC 7644 §3.5.2.1, §3.5.2.3)

def test_okta_deactivates_and_reactivates_without_a_path():
    off = patch(user(), {"op": "replace", "value": {"active": False}})
    assert off == {**user(), "active": False}
    assert patch(off, {"op": "replace", "value": {"active": True}}) == user()


def test_value_keys_are_names_in_any_case_stored_in_canonical_case():
    got = patch(user(), {"op": "replace", "value": {"USERNAME": "babs@example.com", "displayname": "Babs"}})
    assert (got["userName"], got["displayName"]) == ("babs@example.com", "Babs")
    assert "USERNAME" not in got and "displayname" not in got


def test_value_keys_may_be_dotted_sub_attributes():
    got = patch(user(), {"op": "replace", "value": {"name.givenName": "Babs", "NAME.formatted": "Babs Jensen"}})
    assert got["name"] == {"givenName": "Babs", "familyName": "Jensen", "formatted": "Babs Jensen"}


def test_value_keys_may_be_urn_qualified():
    got = patch(user(), {"op": "add", "value": {
        f"{ENTERPRISE}:employeeNumber": "701984",
        f"{ENTERPRISE}:manager": {"value": BOSS},
        f"{CORE_USER}:title": "Lead",
    }})
    assert got[ENTERPRISE] == {"employeeNumber": "701984", "manager": {"value": BOSS}}
    assert got["title"] == "Lead"
    assert got["schemas"] == [CORE_USER, ENTERPRISE]


def test_the_extension_urn_as_a_key_merges_its_attributes():
    start = patch(user(), {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Tours"})
    got = patch(start, {"op": "replace", "value": {ENTERPRISE: {"EmployeeNumber": "42", "manager": BOSS}}})
    assert got[ENTERPRISE] == {"department": "Tours", "employeeNumber": "42", "manager": {"value": BOSS}}


def test_value_keys_may_carry_a_value_filter_as_entra_sends_them():
    got = patch(user(), {"op": "replace", "value": {'emails[type eq "work"].value': "babs@example.com"}})
    assert got["emails"] == [{"value": "babs@example.com", "type": "work", "primary": True}]


def test_a_null_in_a_replace_unassigns_the_attribute():
    got = patch(user(), {"op": "replace", "value": {"title": None, "name": {"formatted": None}}})
    assert "title" not in got
    assert got["name"] == {"givenName": "Barbara", "familyName": "Jensen"}


@pytest.mark.parametrize("value", ["active", ["active"], None, 3])
def test_without_a_path_the_value_must_be_an_object(value):
    fails("invalidValue", user(), {"op": "replace", "value": value})


def test_the_core_schema_urn_as_a_path_stands_for_the_resource():
    assert patch(user(), {"op": "replace", "path": CORE_USER, "value": {"title": "Lead"}})["title"] == "Lead"
    fails("invalidValue", user(), {"op": "replace", "path": CORE_USER, "value": "Lead"})
    fails("invalidValue", user(), {"op": "remove", "path": CORE_USER})


def test_a_path_must_be_a_string():
    fails("invalidPath", user(), {"op": "replace", "path": ["title"], "value": "Lead"})


def test_an_unknown_key_is_an_invalid_path():
    fails("invalidPath", user(), {"op": "replace", "value": {"nickNames": "Babs"}})
    fails("invalidPath", user(), {"op": "replace", "value": {"name": {"secondName": "B"}}})
    fails("invalidPath", user(), {"op": "replace", "value": {"urn:example:ext:1.0:User:x": "y"}})


UNSTORED_OPS = [  # what Entra's default mappings send for attributes Gatehouse does not keep
    {"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "+1 555 0100"},
    {"op": "Replace", "path": 'addresses[type eq "work"].locality', "value": "Redmond"},
    {"op": "Replace", "path": "preferredLanguage", "value": "en-US"},
    {"op": "replace", "value": {"nickName": "Babs", "name.middleName": "J"}},
    {"op": "add", "path": f"{ENTERPRISE}:costCenter", "value": "4130"},
]
STORED = ("id", "externalId", "userName", "displayName", "title", "active", "emails", "groups", "meta")


@pytest.mark.parametrize("op", UNSTORED_OPS)
def test_core_attributes_gatehouse_does_not_store_are_accepted(op):
    """They pass PATCH and leave every attribute Gatehouse stores as it was (the API test checks the row)."""
    got = patch(user(), op)
    assert {k: got.get(k) for k in STORED} == {k: user().get(k) for k in STORED}
    assert {k: v for k, v in got["name"].items() if k != "middleName"} == user()["name"]


# Paths (RFC 7644 §3.5.2, Figure 7)

def test_simple_and_sub_attribute_paths():
    got = patch(user(),
                {"op": "replace", "path": "active", "value": False},
                {"op": "replace", "path": "name.givenName", "value": "Babs"},
                {"op": "replace", "path": "userName", "value": "babs@example.com"})
    assert (got["active"], got["name"]["givenName"], got["userName"]) == (False, "Babs", "babs@example.com")


def test_path_names_match_in_any_case():
    got = patch(user(), {"op": "replace", "path": "NAME.GIVENNAME", "value": "Babs"},
                {"op": "replace", "path": 'EMAILS[TYPE EQ "WORK"].VALUE', "value": "babs@example.com"})
    assert got["name"]["givenName"] == "Babs"
    assert got["emails"][0]["value"] == "babs@example.com"


def test_a_sub_attribute_path_makes_its_parent_when_absent():
    start = user()
    del start["name"]
    assert patch(start, {"op": "add", "path": "name.familyName", "value": "Jensen"})["name"] == {"familyName": "Jensen"}


def test_replace_on_a_complex_attribute_keeps_unmentioned_sub_attributes():
    got = patch(user(), {"op": "replace", "path": "name", "value": {"givenName": "Babs"}})
    assert got["name"] == {"givenName": "Babs", "familyName": "Jensen", "formatted": "Barbara Jensen"}


def test_urn_qualified_enterprise_attributes():
    got = patch(user(), {"op": "add", "path": f"{ENTERPRISE}:employeeNumber", "value": "701984"},
                {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Tours"})
    assert got[ENTERPRISE] == {"employeeNumber": "701984", "department": "Tours"}
    assert got["schemas"] == [CORE_USER, ENTERPRISE]
    got = patch(got, {"op": "replace", "path": f"{ENTERPRISE.upper()}:EMPLOYEENUMBER", "value": "7"})
    assert got[ENTERPRISE]["employeeNumber"] == "7"


@pytest.mark.parametrize("path", [
    "nickNames", "name.secondName", "emails.label", f"{ENTERPRISE}:costCentre", "urn:example:ext:1.0:User:x",
    'emails[type eq "work"', "name..givenName", "1title", "title x", 'name[givenName eq "x"]',
])
def test_an_unknown_attribute_or_malformed_path_is_invalid_path(path):
    fails("invalidPath", user(), {"op": "replace", "path": path, "value": "x"})


@pytest.mark.parametrize("path", ['emails[type eq "work" and]', 'emails[label eq "x"]', 'emails[primary gt true]',
                                  'emails[type eq "a\\"b"]', 'emails[primary eq "maybe"]', "emails[].value",
                                  'emails[x[type eq "work"]]'])
def test_an_unusable_value_filter_is_invalid_filter(path):
    # RFC 7644 §3.12 lists invalidFilter for a PATCH path filter.
    fails("invalidFilter", user(), {"op": "replace", "path": path, "value": "x"})


# Booleans as Entra sends them, and add on a single-valued attribute

@pytest.mark.parametrize("sent, stored", [("False", False), ("True", True), ("fAlSe", False), ("TRUE", True),
                                          (False, False), (True, True)])
def test_boolean_strings_are_coerced(sent, stored):
    assert patch(user(), {"op": "Replace", "path": "active", "value": sent})["active"] is stored
    emails = patch(user(), {"op": "replace", "path": 'emails[type eq "work"].primary', "value": sent})["emails"]
    assert emails[0]["primary"] is stored


@pytest.mark.parametrize("sent", ["no", "0", "", 0, 1, None, [True], {"value": True}])
def test_a_non_boolean_for_a_boolean_is_invalid_value(sent):
    fails("invalidValue", user(), {"op": "add", "path": "active", "value": sent})


def test_add_on_a_single_valued_attribute_replaces_it():
    assert patch(user(), {"op": "Add", "path": "active", "value": "False"})["active"] is False
    assert patch(user(), {"op": "add", "path": "title", "value": "Lead"})["title"] == "Lead"


# Multi-valued attributes

def test_add_appends_emails_deduplicated_by_value_and_type():
    got = patch(user(), {"op": "add", "path": "emails", "value": [
        {"value": "BJENSEN@example.com", "type": "work"},
        {"value": "bjensen@example.com", "type": "home"},
        {"value": "babs@home.example", "type": "home"},
    ]})
    assert got["emails"] == [
        {"value": "BJENSEN@example.com", "type": "work", "primary": True},
        {"value": "bjensen@example.com", "type": "home"},
        {"value": "babs@home.example", "type": "home"},
    ]


def test_a_new_primary_value_clears_the_old_one():
    got = patch(user(), {"op": "add", "path": "emails", "value": [{"value": "b@home.example", "type": "home",
                                                                   "primary": "True"}]})
    assert [e["primary"] for e in got["emails"]] == [False, True]


def test_add_appends_members_deduplicated_by_value():
    got = patch(group(), {"op": "add", "path": "members", "value": [{"value": ALICE}, {"value": BOB, "display": "bob"},
                                                                   {"value": BOB}]}, kind="Group")
    assert got["members"] == [{"value": ALICE, "display": "alice"}, {"value": BOB, "display": "bob"}]


def test_replace_on_a_multi_valued_attribute_replaces_the_list():
    got = patch(group(), {"op": "replace", "path": "members", "value": [{"value": BOB}]}, kind="Group")
    assert got["members"] == [{"value": BOB}]
    got = patch(user(), {"op": "replace", "value": {"emails": [{"value": "b@x.example", "type": "home"}]}})
    assert got["emails"] == [{"value": "b@x.example", "type": "home"}]


def test_replace_with_a_filter_sets_the_sub_attribute_of_matching_values():
    start = patch(user(), {"op": "add", "path": "emails", "value": [{"value": "b@home.example", "type": "home"}]})
    got = patch(start, {"op": "replace", "path": 'emails[type eq "home"].value', "value": "babs@home.example"})
    assert got["emails"] == [{"value": "bjensen@example.com", "type": "work", "primary": True},
                             {"value": "babs@home.example", "type": "home"}]


def test_replace_with_a_filter_and_no_sub_attribute_replaces_matching_values():
    got = patch(user(), {"op": "replace", "path": 'emails[type eq "work"]', "value": {"value": "b@x.example",
                                                                                     "type": "work"}})
    assert got["emails"] == [{"value": "b@x.example", "type": "work"}]


def test_replace_with_a_filter_that_matches_nothing_is_no_target():
    # RFC 7644 §3.5.2.3: no match for a valuePath filter fails with noTarget; replace never creates.
    fails("noTarget", user(), {"op": "replace", "path": 'emails[type eq "home"].value', "value": "b@home.example"})
    fails("noTarget", user(), {"op": "replace", "path": 'emails[type eq "home"]', "value": {"value": "b@h.example"}})


def test_add_with_a_filter_that_matches_nothing_creates_the_value():
    got = patch(user(), {"op": "add", "path": 'emails[type eq "home"].value', "value": "b@home.example"})
    assert got["emails"][1] == {"type": "home", "value": "b@home.example"}
    got = patch(user(), {"op": "add", "path": 'emails[type eq "home"]', "value": {"value": "b@home.example"}})
    assert got["emails"][1] == {"type": "home", "value": "b@home.example"}


def test_add_with_a_filter_that_matches_sets_the_sub_attribute():
    got = patch(user(), {"op": "add", "path": 'emails[type eq "work"].value', "value": "babs@example.com"})
    assert got["emails"] == [{"value": "babs@example.com", "type": "work", "primary": True}]


def test_add_with_a_filter_that_describes_no_single_value_is_no_target():
    fails("noTarget", user(), {"op": "add", "path": 'emails[type eq "home" or type eq "other"].value', "value": "x"})
    fails("noTarget", user(), {"op": "add", "path": 'emails[type ne "work"].value', "value": "x"})


def test_filters_support_the_attribute_and_logical_operators():
    start = patch(user(), {"op": "add", "path": "emails", "value": [{"value": "b@home.example", "type": "home"},
                                                                    {"value": "b@other.example"}]})
    left = {
        'emails[value ew "@home.example"]': ["bjensen@example.com", "b@other.example"],
        'emails[type pr and not (primary eq true)]': ["bjensen@example.com", "b@other.example"],
        'emails[value co "other" or type sw "WO"]': ["b@home.example"],
        'emails[type ne "home"]': ["b@home.example"],
    }
    for path, kept in left.items():
        assert [e["value"] for e in patch(start, {"op": "remove", "path": path})["emails"]] == kept, path


@pytest.mark.parametrize("value", [{"value": "b@x.example"}, "b@x.example", None])
def test_add_to_emails_without_a_filter_needs_a_list(value):
    fails("invalidValue", user(), {"op": "add", "path": "emails", "value": value})


# Remove (RFC 7644 §3.5.2.2)

def test_remove_a_member_by_filter():
    start = patch(group(), {"op": "add", "path": "members", "value": [{"value": BOB}]}, kind="Group")
    got = patch(start, {"op": "remove", "path": f'members[value eq "{ALICE}"]'}, kind="Group")
    assert got["members"] == [{"value": BOB}]


def test_remove_members_listed_in_the_value_as_entra_does():
    start = patch(group(), {"op": "add", "path": "members", "value": [{"value": BOB}]}, kind="Group")
    got = patch(start, {"op": "Remove", "path": "members", "value": [{"value": ALICE}, {"value": "gone-already"}]},
                kind="Group")
    assert got["members"] == [{"value": BOB}]


def test_remove_members_without_a_value_removes_them_all():
    got = patch(group(), {"op": "remove", "path": "members"}, kind="Group")
    assert "members" not in got


def test_remove_a_single_valued_attribute_and_a_sub_attribute():
    got = patch(user(), {"op": "remove", "path": "title"}, {"op": "remove", "path": "name.givenName"},
                {"op": "remove", "path": 'emails[type eq "work"].primary'})
    assert "title" not in got
    assert got["name"] == {"familyName": "Jensen", "formatted": "Barbara Jensen"}
    assert got["emails"] == [{"value": "bjensen@example.com", "type": "work"}]


def test_removing_what_is_not_there_succeeds():
    got = patch(user(), {"op": "remove", "path": f"{ENTERPRISE}:manager"}, {"op": "remove", "path": "title"},
                {"op": "remove", "path": "title"})
    assert ENTERPRISE not in got and "title" not in got


def test_an_emptied_complex_attribute_is_dropped():
    got = patch(user(), *({"op": "remove", "path": f"name.{n}"} for n in ("givenName", "familyName", "formatted")))
    assert "name" not in got


def test_remove_with_a_filter_that_matches_nothing_is_no_target():
    fails("noTarget", group(), {"op": "remove", "path": f'members[value eq "{BOB}"]'}, kind="Group")


def test_remove_without_a_path_is_no_target():
    # RFC 7644 §3.5.2.2: "If 'path' is unspecified, the operation fails ... 'noTarget'."
    fails("noTarget", user(), {"op": "remove", "value": {"title": "Tour Guide"}})
    fails("noTarget", user(), {"op": "remove", "path": " "})


def test_removing_a_required_attribute_is_mutability():
    # RFC 7644 §3.5.2.2: unassigning a required attribute fails with "mutability".
    fails("mutability", user(), {"op": "remove", "path": "userName"})
    fails("mutability", user(), {"op": "replace", "value": {"userName": None}})
    fails("mutability", group(), {"op": "remove", "path": "displayName"}, kind="Group")


# Read-only attributes and wrong shapes

@pytest.mark.parametrize("operation", [
    {"op": "replace", "path": "id", "value": "other"},
    {"op": "remove", "path": "id"},
    {"op": "replace", "value": {"meta": {"version": 'W/"9"'}}},
    {"op": "replace", "path": "meta.version", "value": 'W/"9"'},
    {"op": "add", "path": "groups", "value": [{"value": "g2"}]},
    {"op": "remove", "path": f'groups[value eq "{GID}"]'},
    {"op": "remove", "path": "groups"},
    {"op": "replace", "path": "schemas", "value": [CORE_USER, "urn:example:ext"]},
])
def test_changing_a_read_only_attribute_is_mutability(operation):
    fails("mutability", user(), operation)


def test_restating_a_read_only_value_is_a_no_op():
    got = patch(user(), {"op": "replace", "value": {"id": UID, "schemas": [CORE_USER], "title": "Lead"}})
    assert got == {**user(), "title": "Lead"}


@pytest.mark.parametrize("operation", [
    {"op": "replace", "path": "name", "value": "Barbara Jensen"},
    {"op": "replace", "path": "userName", "value": {"value": "b"}},
    {"op": "replace", "path": "userName", "value": 7},
    {"op": "replace", "path": "emails", "value": {"value": "b@x.example"}},
    {"op": "add", "path": "emails", "value": ["b@x.example"]},
    {"op": "add", "path": f"{ENTERPRISE}:manager", "value": 42},
    {"op": "add", "path": "title"},
    {"op": "add", "path": "title", "value": None},
])
def test_a_value_of_the_wrong_shape_is_invalid_value(operation):
    fails("invalidValue", user(), operation)


def test_a_password_is_accepted_and_never_kept():
    assert patch(user(), {"op": "replace", "value": {"password": "t1meMa$heen"}}) == user()


# Okta, as it behaves (issue 4)

def test_okta_group_push_sequence():
    got = group()
    for operation in (
        {"op": "replace", "value": {"id": GID, "displayName": "Tour Leads"}},
        {"op": "add", "path": "members", "value": [{"value": BOB, "display": "bob@example.com"}]},
        {"op": "remove", "path": f'members[value eq "{ALICE}"]'},
        {"op": "add", "path": "members", "value": [{"value": ALICE, "display": "alice@example.com"}]},
    ):
        got = patch(got, operation, kind="Group")
    assert got == {**group(), "displayName": "Tour Leads", "members": [
        {"value": BOB, "display": "bob@example.com"}, {"value": ALICE, "display": "alice@example.com"}]}


# Microsoft Entra ID, as it behaves (issue 4)

def test_entra_user_sequence():
    got = user()
    for operation in (
        {"op": "Replace", "path": "displayName", "value": "Babs"},
        {"op": "Add", "path": "name.givenName", "value": "Babs"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "babs@example.com"},
        {"op": "Add", "path": f"{ENTERPRISE}:employeeNumber", "value": "701984"},
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": BOSS},
    ):
        got = patch(got, operation)
    assert got == {**user(), "schemas": [CORE_USER, ENTERPRISE], "displayName": "Babs",
                   "name": {**user()["name"], "givenName": "Babs"},
                   "emails": [{"value": "babs@example.com", "type": "work", "primary": True}],
                   ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": BOSS}}}


def test_entra_manager_set_changed_and_removed():
    got = patch(user(), {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": BOSS})
    assert got[ENTERPRISE] == {"manager": {"value": BOSS}}
    # A new manager replaces the whole reference: the old displayName belonged to the old manager.
    got[ENTERPRISE]["manager"]["displayName"] = "The Boss"
    got = patch(got, {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": {"value": ALICE}})
    assert got[ENTERPRISE] == {"manager": {"value": ALICE}}
    got = patch(got, {"op": "Remove", "path": f"{ENTERPRISE}:manager"})
    assert got == user()


def test_entra_deactivates_with_add_false_and_its_periodic_active_true_succeeds():
    off = patch(user(), {"op": "Add", "path": "active", "value": "False"})
    assert off == {**user(), "active": False}
    on = patch(off, {"op": "Replace", "path": "active", "value": "True"})
    assert on == user()
    assert patch(on, {"op": "Replace", "path": "active", "value": "True"}) == user()
    assert patch(on, {"op": "Replace", "value": {"active": True}}) == user()
    assert patch(on, {"op": "Replace", "value": {"active": "False"}}) == off


def test_entra_group_sequence():
    got = group()
    for operation in (
        {"op": "Replace", "path": "displayName", "value": "Tour Leads"},
        {"op": "Replace", "path": "externalId", "value": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"},
        {"op": "Add", "path": "members", "value": [{"value": BOB}]},
        {"op": "Remove", "path": "members", "value": [{"value": ALICE}]},
    ):
        got = patch(got, operation, kind="Group")
    assert got == {**group(), "displayName": "Tour Leads", "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                   "members": [{"value": BOB}]}
