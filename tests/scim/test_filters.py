"""SCIM filters compiled to parameterized SQL, run on a real PostgreSQL."""

import json

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

from service.scim.filters import MAX_COMPARISONS, InvalidFilter, TooManyComparisons, Where, compile_filter

DEE = 'd\'arcy "dj" \\o/'  # a userName with both quotes and a backslash
PEOPLE = {
    "ann": dict(user_name="ann@example.com", given_name="Ann", family_name="Lee", display_name="Ann Lee",
                title="Engineer", employee_number="E-100", department="R&D", organization="Acme",
                emails=[{"value": "Ann@Example.com", "type": "work", "primary": True},
                        {"value": "ann@home.net", "type": "home", "primary": False}],
                created_at="2024-01-01T00:00:00Z", updated_at="2024-06-01T00:00:00Z"),
    "bob": dict(user_name="Bob@Example.com", given_name="Bob", family_name="Stone", active=False,
                employee_number="e-200", department="Sales", emails=[{"value": "bob@corp.example", "type": "work"}],
                created_at="2024-03-01T00:00:00Z", updated_at="2024-03-02T00:00:00Z"),
    "carl": dict(user_name="carl", display_name="", title="50%_off\\sale", emails=[],
                 created_at="2024-05-01T00:00:00Z", updated_at="2024-05-01T00:00:00Z"),
    "dee": dict(user_name=DEE, display_name="Dee", title="Engineering lead",
                emails=[{"value": "dee@example.org", "type": "work", "primary": "True"}],
                created_at="2024-07-01T00:00:00Z", updated_at="2024-07-01T00:00:00Z"),
}
GROUPS = {
    "Engineering": dict(external_id="G-1", created_at="2024-01-01T00:00:00Z"),
    "sales": dict(created_at="2024-02-01T00:00:00Z"),
    "Empty": dict(external_id="G-3", created_at="2024-03-01T00:00:00Z"),
}
EVERYONE = ["ann", "bob", "carl", "dee"]
ALL_GROUPS = ["Empty", "Engineering", "sales"]
SELECT = {"User": "SELECT p.user_name FROM people p WHERE {}", "Group": "SELECT g.display_name FROM groups g WHERE {}"}
LABEL = {p["user_name"]: key for key, p in PEOPLE.items()}


def _insert(conn, table: str, values: dict):
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING id").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(map(sql.Placeholder, values)))
    return conn.execute(query, values).fetchone()[0]


@pytest.fixture
def ids(database) -> dict:
    """Four people, three groups, memberships and external ids; their ids by name."""
    with psycopg.connect(database.owner_url) as conn:
        found = {key: _insert(conn, "people", {**p, "emails": Jsonb(p["emails"]), "source": "scim"})
                 for key, p in PEOPLE.items()}
        conn.execute("UPDATE people SET manager_id = %s WHERE id = %s", (found["ann"], found["bob"]))
        found.update({name: _insert(conn, "groups", {**g, "display_name": name, "source": "scim"})
                      for name, g in GROUPS.items()})
        cur = conn.cursor()
        cur.executemany("INSERT INTO person_external_ids (person_id, source, external_id) VALUES (%s, %s, %s)",
                        [(found["ann"], "scim", "ext-Ann"), (found["bob"], "scim", "ext-bob"),
                         (found["bob"], "ldap", "ldap-bob"), (found["carl"], "ldap", "ext-carl")])
        cur.executemany("INSERT INTO group_members (group_id, person_id) VALUES (%s, %s)",
                        [(found["Engineering"], found["ann"]), (found["Engineering"], found["bob"]),
                         (found["sales"], found["bob"])])
    found["ANN"] = str(found["ann"]).upper()
    return found


def _matches(conn, text: str, resource: str = "User") -> list[str]:
    """Who the filter selects: person keys for User, display names for Group."""
    where = compile_filter(text, resource, scim_source="scim")
    rows = conn.execute(sql.SQL(SELECT[resource]).format(where.sql), where.params).fetchall()
    return sorted(LABEL.get(r[0], r[0]) for r in rows)


def _mismatches(database, ids: dict, cases: list, resource: str = "User") -> list:
    """The cases whose filter selects other than expected, as (filter, got, expected)."""
    with psycopg.connect(database.owner_url) as conn:
        found = [(text, _matches(conn, text.format(**ids), resource), expected) for text, expected in cases]
    return [case for case in found if case[1] != case[2]]


USER_CASES = [
    # id: a uuid; eq/ne/pr only, a non-uuid equals nothing
    ('id eq "{ann}"', ["ann"]),
    ('id eq "{ANN}"', ["ann"]),
    ('id ne "{ann}"', ["bob", "carl", "dee"]),
    ('id eq "not-a-uuid"', []),
    ('id ne "not-a-uuid"', EVERYONE),
    ("id pr", EVERYONE),
    # userName: caseExact false, every operator
    ('userName eq "ANN@example.COM"', ["ann"]),
    ('userName eq "bob@example.com"', ["bob"]),
    ('userName ne "ann@example.com"', ["bob", "carl", "dee"]),
    ('userName co "EXAMPLE"', ["ann", "bob"]),
    ('userName sw "B"', ["bob"]),
    ('userName ew ".COM"', ["ann", "bob"]),
    ('userName gt "c"', ["carl", "dee"]),
    ('userName ge "carl"', ["carl", "dee"]),
    ('userName lt "b"', ["ann"]),
    ('userName le "BOB@example.com"', ["ann", "bob"]),
    ("userName pr", EVERYONE),
    # externalId: caseExact true, only the id this SCIM client gave
    ('externalId eq "ext-Ann"', ["ann"]),
    ('externalId eq "ext-ann"', []),
    ('externalId eq "ext-carl"', []),
    ('externalId eq "ldap-bob"', []),
    ('externalId ne "ext-Ann"', ["bob", "carl", "dee"]),
    ('externalId co "ext"', ["ann", "bob"]),
    ('externalId co "EXT"', []),
    ('externalId sw "ext-A"', ["ann"]),
    ('externalId ew "bob"', ["bob"]),
    ('externalId gt "ext-b"', ["bob"]),
    ("externalId pr", ["ann", "bob"]),
    # other strings: a null or empty value is not present, and not equal to anything
    ('displayName eq "ann lee"', ["ann"]),
    ('displayName ne "Dee"', ["ann", "bob", "carl"]),
    ('displayName co "EE"', ["ann", "dee"]),
    ("displayName pr", ["ann", "dee"]),
    ('name.givenName eq "ANN"', ["ann"]),
    ('name.familyName sw "st"', ["bob"]),
    ('title sw "eng"', ["ann", "dee"]),
    ("title pr", ["ann", "carl", "dee"]),
    # active: a boolean
    ("active eq true", ["ann", "carl", "dee"]),
    ("active eq false", ["bob"]),
    ("active ne true", ["bob"]),
    ("active pr", EVERYONE),
    # emails: any one value matches; value and type are caseExact false
    ('emails co "@EXAMPLE.com"', ["ann"]),
    ('emails eq "ann@example.com"', ["ann"]),
    ('emails.value ew "corp.example"', ["bob"]),
    ('emails.value ne "bob@corp.example"', ["ann", "dee"]),
    ('emails.type eq "HOME"', ["ann"]),
    ("emails.primary eq true", ["ann", "dee"]),
    ("emails.primary eq false", ["ann"]),
    ("emails pr", ["ann", "bob", "dee"]),
    ("not (emails pr)", ["carl"]),
    ('emails[type eq "work"]', ["ann", "bob", "dee"]),
    ('emails[type eq "work" and value co "@example.com"]', ["ann"]),
    ('emails[type eq "home" and value co "example"]', []),  # one email must match the whole bracket
    ('emails[type eq "home" or primary eq true]', ["ann", "dee"]),
    ('emails[not (type eq "work")]', ["ann"]),
    ('emails[type eq "work"].value eq "ANN@example.com"', ["ann"]),
    ('emails[type eq "home"].value eq "ann@example.com"', []),
    ('emails[type eq "work"].value ew ".example"', ["bob"]),
    # enterprise extension
    ('employeeNumber eq "E-100"', ["ann"]),
    ('employeeNumber eq "e-100"', []),
    ('employeeNumber sw "e-"', ["bob"]),
    ("employeeNumber pr", ["ann", "bob"]),
    ('department eq "r&d"', ["ann"]),
    ('organization ne "acme"', ["bob", "carl", "dee"]),
    ("organization pr", ["ann"]),
    ('manager eq "{ann}"', ["bob"]),
    ('manager.value eq "{ann}"', ["bob"]),
    ("manager.value pr", ["bob"]),
    # meta: timestamps, compared chronologically
    ('meta.created eq "2024-01-01T00:00:00Z"', ["ann"]),
    ('meta.created eq "2024-01-01T01:00:00+01:00"', ["ann"]),
    ('meta.created ne "2024-01-01T00:00:00Z"', ["bob", "carl", "dee"]),
    ('meta.created gt "2024-02-01T00:00:00Z"', ["bob", "carl", "dee"]),
    ('meta.created ge "2024-05-01T00:00:00.000Z"', ["carl", "dee"]),
    ('meta.created lt "2024-02-01"', ["ann"]),
    ('meta.created le "2024-03-01T00:00:00Z"', ["ann", "bob"]),
    ('meta.lastModified ge "2024-06-01T00:00:00Z"', ["ann", "dee"]),
    ("meta.lastModified pr", EVERYONE),
]

LOGIC_CASES = [
    ('userName sw "b" or userName sw "a" and active eq true', ["ann", "bob"]),  # "and" binds tighter
    ('(userName sw "b" or userName sw "a") and active eq true', ["ann"]),
    ('active eq true and userName sw "a" or userName sw "b"', ["ann", "bob"]),
    ('active eq true and (userName sw "a" or userName sw "b")', ["ann"]),
    ('userName sw "a" or userName sw "b" or userName sw "c"', ["ann", "bob", "carl"]),
    ('not (userName sw "a" or userName sw "b")', ["carl", "dee"]),
    ('not (displayName eq "Dee")', ["ann", "bob", "carl"]),  # no value is no match, so "not" matches
    ("not (not (active eq false))", ["bob"]),
    ('title pr and not (title co "%") and active eq true', ["ann", "dee"]),
    ('emails[type eq "work"] and not (emails[type eq "home"])', ["bob", "dee"]),
    ('((userName sw "a")) or (((emails.value ew ".org")))', ["ann", "dee"]),
]

NAME_CASES = [  # attribute names and operators are case-insensitive; schema URIs qualify names
    ('USERNAME eq "ann@example.com"', ["ann"]),
    ('username EQ "ann@example.com"', ["ann"]),
    ('Name.GivenName Eq "ann"', ["ann"]),
    ('EMAILS[TYPE eq "home"]', ["ann"]),
    ('emails[Type eq "work"].VALUE ew "corp.example"', ["bob"]),
    ('META.CREATED lt "2024-02-01T00:00:00Z"', ["ann"]),
    ('EmployeeNumber eq "E-100" AND Active eq true', ["ann"]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ann@example.com"', ["ann"]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "Bob"', ["bob"]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "home"]', ["ann"]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value sw "bob"', ["bob"]),
    ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "E-100"', ["ann"]),
    ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "{ann}"', ["bob"]),
    ('URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:USERNAME eq "ann@example.com"', ["ann"]),
]

LITERAL_CASES = [  # co/sw/ew: %, _ and \ match themselves; quotes and backslashes are JSON escapes
    ('title co "%"', ["carl"]),
    ('title co "_"', ["carl"]),
    ('title co "\\\\"', ["carl"]),
    ('title sw "50%_"', ["carl"]),
    ('title ew "\\\\sale"', ["carl"]),
    ('title co "%%"', []),
    ('title sw "5_"', []),
    ('userName co "_"', []),
    ('userName co "%"', []),
    (f"userName eq {json.dumps(DEE)}", ["dee"]),
    (f"userName eq {json.dumps(DEE.upper())}", ["dee"]),
    ('userName co "\\"dj\\""', ["dee"]),
    ('userName ew "\\\\o/"', ["dee"]),
    ("userName sw \"d'\"", ["dee"]),
]

GROUP_CASES = [
    ('id eq "{Engineering}"', ["Engineering"]),
    ('id ne "{Engineering}"', ["Empty", "sales"]),
    ('displayName eq "ENGINEERING"', ["Engineering"]),
    ('displayName co "A"', ["sales"]),
    ('displayName sw "e"', ["Empty", "Engineering"]),
    ('displayName gt "f"', ["sales"]),
    ("displayName pr", ALL_GROUPS),
    ('externalId eq "G-1"', ["Engineering"]),
    ('externalId eq "g-1"', []),
    ('externalId ne "G-1"', ["Empty", "sales"]),
    ('externalId ew "-3"', ["Empty"]),
    ("externalId pr", ["Empty", "Engineering"]),
    ('members eq "{bob}"', ["Engineering", "sales"]),
    ('members.value eq "{ann}"', ["Engineering"]),
    ('members[value eq "{ann}"]', ["Engineering"]),
    ('members[value eq "{ann}" or value eq "{bob}"]', ["Engineering", "sales"]),
    ('members.value eq "not-an-id"', []),
    ("members pr", ["Engineering", "sales"]),
    ("not (members pr)", ["Empty"]),
    ('meta.created gt "2024-01-15T00:00:00Z"', ["Empty", "sales"]),
    ('meta.lastModified pr and displayName sw "s"', ["sales"]),
    ('urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "sales"', ["sales"]),
    ('urn:ietf:params:scim:schemas:core:2.0:Group:members[value eq "{bob}"]', ["Engineering", "sales"]),
]


# One database for many cases: a fresh one per case would make this file slow.
def test_every_operator_on_every_user_attribute(database, ids):
    assert _mismatches(database, ids, USER_CASES) == []


def test_and_or_not_and_grouping(database, ids):
    assert _mismatches(database, ids, LOGIC_CASES) == []


def test_attribute_names_are_case_insensitive_and_may_carry_their_schema_uri(database, ids):
    assert _mismatches(database, ids, NAME_CASES) == []


def test_like_wildcards_quotes_and_backslashes_match_literally(database, ids):
    assert _mismatches(database, ids, LITERAL_CASES) == []


def test_group_filters(database, ids):
    assert _mismatches(database, ids, GROUP_CASES, "Group") == []


INVALID_USER = [
    "", "   ", "userName", "userName eq", 'userName eq "x" garbage', 'userName eq "x" and', 'userName eq "x")',
    '(userName eq "x"', 'userName zz "x"', 'userName regex "x"', "not userName pr", 'userName eq "unterminated',
    'userName eq "bad \\q escape"',
    # unknown attributes, or known ones under the wrong schema
    'nosuch eq "x"', 'name eq "x"', 'emails.nosuch eq "x"', 'members pr',
    'urn:ietf:params:scim:schemas:core:2.0:User:employeeNumber eq "x"',
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName eq "x"',
    'urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x"',
    # operators that do not fit the type
    "active gt true", "active le false", 'active co "t"', 'id co "a"', 'id gt "a"', 'meta.created co "2024"',
    'meta.created sw "2024"', "emails.primary gt true",
    # values that do not fit the type
    'active eq "true"', "active eq null", "active eq 1", 'meta.created gt "not-a-date"', "meta.created gt 1",
    "userName eq true", "userName eq null", "userName eq 5", "id eq true",
    # value paths
    'emails[nosuch eq "x"]', 'emails[type eq "work"][value eq "x"]', 'emails[type[value eq "x"]]',
    'emails.value[type eq "work"]', 'emails[type eq "work"] eq "x"', 'emails[type eq "work"].nosuch eq "x"',
    'name[givenName eq "x"]', 'externalId[value eq "x"]', 'manager[value eq "x"]',
    'emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "work"]',
    "(" * 40 + "userName pr" + ")" * 40,
]
INVALID_GROUP = ['userName eq "x"', 'members co', "members gt true", 'emails[type eq "work"]',
                 'urn:ietf:params:scim:schemas:core:2.0:User:displayName eq "x"']


@pytest.mark.parametrize(("text", "resource"),
                         [(t, "User") for t in INVALID_USER] + [(t, "Group") for t in INVALID_GROUP])
def test_invalid_filters_raise_invalid_filter(text, resource):
    with pytest.raises(InvalidFilter) as raised:
        compile_filter(text, resource, scim_source="scim")
    assert raised.value.scim_type == "invalidFilter"
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(("comparison", "counts"), [
    ("emails pr", 1), ('id eq "x"', 1), ('userName eq "x"', 1), ("not (active eq true)", 1),
    ('emails[type eq "work" and value pr]', 2), ('emails[type eq "work"].value eq "x"', 2),
])
def test_the_size_cap_counts_comparisons_of_the_parsed_filter(comparison, counts):
    fits = MAX_COMPARISONS // counts
    compile_filter(" or ".join([comparison] * fits), "User", scim_source="scim")
    with pytest.raises(TooManyComparisons) as raised:
        compile_filter(" and ".join([comparison] * (fits + 1)), "User", scim_source="scim")
    assert raised.value.scim_type == "tooMany" and f"{MAX_COMPARISONS} comparisons" in str(raised.value)


@pytest.mark.parametrize("value", ["\\u0000", "a\\u0000b", "\\u001f", "\\n", "\\u007f", "\\ud800", "\\udfff"])
def test_control_characters_and_lone_surrogates_in_a_value_are_an_invalid_filter(value):
    for text in (f'userName eq "{value}"', f'emails[value co "{value}"]', f'emails[type eq "{value}"].value pr'):
        with pytest.raises(InvalidFilter, match="control character") as raised:
            compile_filter(text, "User", scim_source="scim")
        assert raised.value.scim_type == "invalidFilter"


def test_an_unknown_resource_is_the_callers_mistake():
    with pytest.raises(ValueError, match="no filterable resource") as raised:
        compile_filter('userName eq "x"', "Device", scim_source="scim")
    assert not isinstance(raised.value, InvalidFilter)


INJECTED_VALUES = [
    'userName eq "x\\" or 1=1"',
    "userName eq \"x'); DROP TABLE people; --\"",
    "userName eq \"' OR '1'='1\"",
    'displayName co "%\' OR 1=1 --"',
    'emails[value eq "x\\"] or 1=1 or \\"\\"=\\""]',
    "externalId eq \"x' OR x.source <> 'scim\"",
    'title sw "\\\\\'; DELETE FROM people; --"',
]


def test_values_are_bound_never_spliced(database, ids):
    with psycopg.connect(database.owner_url) as conn:
        for text in INJECTED_VALUES:
            where = compile_filter(text, "User", scim_source="scim")
            rendered = where.sql.as_string(conn)
            assert all(v not in rendered for k, v in where.params.items() if k != "scim_source"), text
            assert _matches(conn, text) == [], text
        assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == len(PEOPLE)
        assert conn.execute("SELECT count(*) FROM person_external_ids").fetchone()[0] == 4


@pytest.mark.parametrize("text", [
    'userName;DROP eq "x"', '"userName" eq "x"', 'user_name eq "x"', 'p.user_name eq "x"', 'userName-- eq "x"',
    'lower(p.user_name) eq "x"', 'userName eq "x" or 1=1', 'userName eq "x" OR TRUE', "1 eq 1",
    'userName eq "x"; DROP TABLE people', 'userName eq "x" -- comment', "userName eq 'x'",
])
def test_odd_attribute_names_and_trailing_sql_are_invalid(text):
    with pytest.raises(InvalidFilter):
        compile_filter(text, "User", scim_source="scim")


def test_username_eq_goes_through_the_login_key_and_named_parameters(database):
    where = compile_filter('userName eq "Ann"', "User", scim_source="scim")
    with psycopg.connect(database.owner_url) as conn:
        assert where.sql.as_string(conn) == (
            "(p.id IN (SELECT l.person_id FROM person_logins l WHERE l.login_key = login_key(%(f0)s)) "
            "AND login_key(p.user_name) = login_key(%(f0)s))")
    assert where == Where(where.sql, {"f0": "Ann"})


def test_parameters_combine_with_the_callers_own(database, ids):
    where = compile_filter('externalId pr and emails[type eq "work"]', "User", scim_source="scim")
    assert where.params == {"f0": "work", "scim_source": "scim"}
    query = sql.SQL("SELECT p.user_name FROM people p WHERE {} AND p.active = %(active)s ORDER BY 1").format(where.sql)
    with psycopg.connect(database.owner_url) as conn:
        rows = conn.execute(query, {**where.params, "active": True}).fetchall()
    assert rows == [("ann@example.com",)]
    other = compile_filter("externalId pr", "User", scim_source="ldap")
    with psycopg.connect(database.owner_url) as conn:
        rows = conn.execute(sql.SQL(SELECT["User"]).format(other.sql), other.params).fetchall()
    assert sorted(LABEL[r[0]] for r in rows) == ["bob", "carl"]  # the ids another source gave


def test_lookups_by_username_and_employee_number_use_their_unique_indexes(database):
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO people (user_name, employee_number, source) "
                     "SELECT 'user' || i || '@example.com', 'E' || i, 'scim' FROM generate_series(1, 2000) i")
        conn.execute("ANALYZE people")
        conn.execute("ANALYZE person_logins")
        for text, index in [('userName eq "USER42@example.com"', "person_logins_pkey"),
                            ('userName eq "ｕｓｅｒ42@example.com "', "person_logins_pkey"),
                            ('employeeNumber eq "E42"', "people_employee_number_key")]:
            where = compile_filter(text, "User", scim_source="scim")
            plan = conn.execute(sql.SQL("EXPLAIN SELECT p.id FROM people p WHERE {}").format(where.sql), where.params)
            assert index in "\n".join(r[0] for r in plan), text
            found = conn.execute(sql.SQL(SELECT["User"]).format(where.sql), where.params).fetchall()
            assert found == [("user42@example.com",)]


_ATTRS = st.sampled_from([
    "id", "userName", "externalId", "displayName", "name.givenName", "title", "active", "emails", "emails.value",
    "emails.type", "emails.primary", "employeeNumber", "manager.value", "meta.created", "meta.lastModified",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName", "nosuch", "members",
])
_VALUES = st.sampled_from(['"x"', '"%_\\\\"', '"2024-01-01T00:00:00Z"', '"6f1c7c52-1111-4c1b-9c79-0b0e2f3c5f7e"',
                           "true", "false", "null", "1", '"\\" or 1=1"', '""']) | st.text(max_size=8).map(json.dumps)
_OPS = st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
_LEAF = st.one_of(st.builds("{} pr".format, _ATTRS), st.builds("{} {} {}".format, _ATTRS, _OPS, _VALUES))
_FILTERS = st.recursive(_LEAF, lambda inner: st.one_of(
    st.builds("{} and {}".format, inner, inner), st.builds("{} or {}".format, inner, inner),
    st.builds("not ({})".format, inner), st.builds("({})".format, inner),
    st.builds('emails[type eq "work" and {}]'.format, inner),
    st.builds('emails[{}].value eq "x"'.format, inner)), max_leaves=6)
_NOISE = st.lists(st.sampled_from(['userName', 'eq', '"x"', "(", ")", "[", "]", ".value", "and", "or", "not", "pr",
                                   ";", "'", '"', "\\", "urn:x:", "1", "true"]), max_size=10).map(" ".join)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_FILTERS | _NOISE | st.text(max_size=30))
@example(text='userName eq "\\u0000"')  # PostgreSQL text cannot hold NUL: it was a DataError, found at random
@example(text='emails[value co "\\ud800"]')  # nor can UTF-8 encode a lone surrogate
def test_any_text_compiles_to_sql_that_runs_or_is_an_invalid_filter(database, text):
    try:
        where = compile_filter(text, "User", scim_source="scim")
    except (InvalidFilter, TooManyComparisons):
        return
    with psycopg.connect(database.owner_url) as conn:
        conn.execute(sql.SQL(SELECT["User"]).format(where.sql), where.params).fetchall()
