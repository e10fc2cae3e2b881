"""The access API on real PostgreSQL: decisions, every deny reason, the journal, RADIUS, members, fail closed."""

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from service import bootstrap, journal
from service.app import create_app
from service.clients import store as clients
from service.config import Settings
from tests.support.cli import db_env, gatehouse
from tests.support.factories import add_completion, add_grant, add_person, allowed_person

YEAR = timedelta(days=365)


# --- seeding (as the owner, plain SQL) ----------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _lapse_period(services) -> timedelta:
    course = services.policy.requirements_for("vpn")[0]
    return timedelta(days=course.validity_days + course.grace_days)


def _token(database, scopes=("access:check",), name="vpn-gw") -> str:
    with psycopg.connect(database.app_url) as conn:
        clients.create(conn, name=name, scopes=scopes, created_by="test")
        return clients.issue_static_token(conn, name).secret


def _journal(database, where="TRUE", params=()) -> list[tuple]:
    with psycopg.connect(database.app_url) as conn:
        return conn.execute("SELECT seq, kind, outcome, actor, subject, resource, reasons, detail, policy_version, "
                            f"request_id FROM journal WHERE {where} ORDER BY seq", params).fetchall()


@pytest.fixture
def http(client, database):
    """The app's test client (the app start has synced the policy's resources) and a gateway token."""
    token = _token(database)
    return client, {"Authorization": f"Bearer {token}"}


def check(http, user, resource="vpn", method="post"):
    client, headers = http
    if method == "get":
        return client.get("/api/v1/access/check", query_string={"user": user, "resource": resource}, headers=headers)
    return client.post("/api/v1/access/check", json={"user": user, "resource": resource}, headers=headers)


# --- decisions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "get"])
def test_an_allowed_person_is_allowed_and_the_decision_is_journaled(database, services, http, method):
    person_id = allowed_person(database)
    r = check(http, "alice", method=method)
    assert r.status_code == 200, r.json
    assert r.json["allow"] is True and [x["code"] for x in r.json["reasons"]] == ["ok"]
    assert r.json["policy_version"] == services.policy.version
    (seq, kind, outcome, actor, subject, resource, reasons, detail, version, request_id), = _journal(
        database, "kind = 'check'")
    assert (seq, kind, outcome, actor, subject, resource) == (
        r.json["decision_id"], "check", "allow", "client:vpn-gw", person_id, "vpn")
    assert reasons == r.json["reasons"] and detail == {"user": "alice"}
    assert version == services.policy.version and request_id == r.headers["X-Request-Id"]


@pytest.mark.parametrize("asked", ["ALICE", "Alice@Example.com"])
def test_people_are_found_by_user_name_or_primary_email_in_any_case(database, http, asked):
    person_id = allowed_person(database, email="alice@example.com", employee="E-1001")
    add_person(database, "alice@example.comx", email="other@example.com")  # near misses are not matches
    r = check(http, asked)
    assert r.json["allow"] is True
    assert _journal(database, "seq = %s", (r.json["decision_id"],))[0][4] == person_id


# --- which person a reference names (issue 9, item 6) ------------------------------------------


def _scim(client, database):
    from tests.support.scim import Scim, make_token

    return Scim(client, make_token(database, "okta"))


def _scim_user(user_name: str, employee_number: str | None = None, email: str | None = None) -> dict:
    from tests.support.scim import ENTERPRISE, USER

    body = {"schemas": [USER, ENTERPRISE], "userName": user_name, "active": True}
    if employee_number:
        body[ENTERPRISE] = {"employeeNumber": employee_number}
    if email:
        body["emails"] = [{"value": email, "type": "work", "primary": True}]
    return body


@pytest.fixture
def gateway(settings, database):
    """make(*identifiers): a test client of an app whose checks use those identifiers, and a gateway token."""
    built, headers = [], {"Authorization": f"Bearer {_token(database)}"}

    def make(*identifiers):
        built.append(bootstrap.build(replace(settings, check_identifiers=identifiers), database))
        return create_app(services=built[-1]).test_client(), headers

    yield make
    for services in built:
        services.close()


def test_a_leavers_user_name_never_resolves_to_someone_else(database, services, http):
    """The attack: sam's employeeNumber is "rita"; once rita is deleted a check for "rita" must not let sam in."""
    client, _ = http
    scim = _scim(client, database)
    rita = scim.post("Users", _scim_user("rita"))[1]["id"]
    sam = scim.post("Users", _scim_user("sam", employee_number="rita"))[1]["id"]
    for person_id in (rita, sam):
        add_grant(database, person_id)
        add_completion(database, person_id, _now() - timedelta(days=30))
    assert scim.delete(f"Users/{rita}")[0] == 204
    answers = [check(http, "rita"), check(http, "rita", method="get"),
               client.post("/api/v1/access/radius", json={"user": "rita"}, headers=http[1])]
    for r in answers[:2]:
        assert r.status_code == 200 and r.json["allow"] is False, r.json
        assert r.json["reasons"][0]["code"] == "person_inactive" and "deleted" in r.json["reasons"][0]["text"]
    assert answers[2].status_code == 401 and "deleted" in answers[2].json["reply:Reply-Message"]["value"]
    rows = _journal(database, "kind = 'check'")
    assert [(row[2], row[4]) for row in rows] == [("deny", rita)] * 3  # journaled as rita, never as sam
    explained = gatehouse("access", "explain", "rita", "vpn", env=db_env(database))
    assert explained.returncode == 1 and explained.stdout.startswith("DENY: rita may not use vpn")
    assert "the person is deleted [person_inactive]" in explained.stdout
    assert check(http, "sam").json["allow"] is True  # sam is still sam


def test_a_reference_naming_two_live_people_denies_as_ambiguous_with_both_ids(database, http):
    bob = allowed_person(database, "bob")
    mallory = add_person(database, "mallory", email="BOB")  # a primary e-mail that is bob's userName
    r = check(http, "bob")
    assert r.status_code == 200 and r.json["allow"] is False
    assert [x["code"] for x in r.json["reasons"]] == ["person_ambiguous"]
    (subject, detail), = [(row[4], row[7]) for row in _journal(database, "kind = 'check'")]
    assert subject is None and detail == {"user": "bob", "ambiguous": sorted([bob, mallory])}
    assert check(http, "mallory").json["reasons"][0]["code"] == "no_grant"  # each is still found by userName
    explained = gatehouse("access", "explain", "bob", "vpn", env=db_env(database))
    assert explained.returncode == 1 and "[person_ambiguous]" in explained.stdout
    assert f"People 'bob' names: {', '.join(sorted([bob, mallory]))}" in explained.stdout


def test_an_inactive_person_named_by_user_name_is_that_person(database, http):
    carol = add_person(database, "carol", active=False)
    allowed_person(database, "dave", email="carol")
    r = check(http, "carol")
    assert r.json["allow"] is False and r.json["reasons"][0]["code"] == "person_inactive"
    assert _journal(database, "kind = 'check'")[0][4] == carol


def test_employee_numbers_name_people_only_when_the_setting_says_so(database, gateway):
    default, numbers, only_numbers = (gateway("user_name", "email"), gateway("user_name", "email", "employee_number"),
                                      gateway("employee_number"))  # the first app start creates the resources
    alice = allowed_person(database, employee="E-1001")
    assert [x["code"] for x in check(default, "E-1001").json["reasons"]] == ["person_unknown"]
    assert check(numbers, "E-1001").json["allow"] is True
    assert _journal(database, "kind = 'check'")[-1][4] == alice
    # Through employee numbers too, rita's userName and sam's number are two people: neither is picked.
    rita, sam = allowed_person(database, "rita"), allowed_person(database, "sam", employee="rita")
    r = check(numbers, "rita").json
    assert r["allow"] is False and [x["code"] for x in r["reasons"]] == ["person_ambiguous"]
    assert _journal(database, "kind = 'check'")[-1][7]["ambiguous"] == sorted([rita, sam])
    assert check(only_numbers, "rita").json["allow"] is True
    assert _journal(database, "kind = 'check'")[-1][4] == sam
    assert check(only_numbers, "alice").json["reasons"][0]["code"] == "person_unknown"


def test_the_settings_identifiers_are_the_matchers():
    from service.config import CHECK_IDENTIFIERS
    from service.identity.people import IDENTIFIERS

    assert CHECK_IDENTIFIERS == IDENTIFIERS


DENIALS = {
    "inactive": (dict(active=False), "active", "person_inactive"),
    "no grant": ({}, None, "no_grant"),
    "revoked grant": ({}, "revoked", "grant_revoked"),
    "suspended grant": ({}, "suspended", "grant_suspended"),
}


@pytest.mark.parametrize("case", DENIALS)
def test_each_deny_reason(database, http, case):
    person, grant, code = DENIALS[case]
    person_id = add_person(database, "carol", **person)
    if grant:
        add_grant(database, person_id, state=grant, reason=None if grant == "active" else "left the team")
    add_completion(database, person_id, _now() - timedelta(days=30))
    r = check(http, "carol")
    assert r.status_code == 200 and r.json["allow"] is False
    assert [x["code"] for x in r.json["reasons"]] == [code]
    if grant in ("revoked", "suspended"):
        assert "left the team" in r.json["reasons"][0]["text"]
    (outcome, subject), = [(row[2], row[4]) for row in _journal(database, "kind = 'check'")]
    assert (outcome, subject) == ("deny", person_id)


def test_training_lapses_at_the_boundary(database, services, http):
    lapse = _lapse_period(services)
    # One second past the boundary is lapsed; a margin before it (the request takes time) is allowed.
    for name, completed in (("late", _now() - lapse - timedelta(seconds=1)),
                            ("in-time", _now() - lapse + timedelta(seconds=30))):
        person_id = add_person(database, name)
        add_grant(database, person_id)
        add_completion(database, person_id, completed - YEAR)  # an older completion never counts
        add_completion(database, person_id, completed)
    late = check(http, "late").json
    assert late["allow"] is False and [x["code"] for x in late["reasons"]] == ["training_lapsed:security-awareness"]
    assert "lapsed at" in late["reasons"][0]["text"]
    assert check(http, "in-time").json["allow"] is True


def test_a_newcomer_has_grace_then_training_is_missing(database, services, http):
    grace = timedelta(days=services.policy.requirements_for("vpn")[0].grace_days)
    for name, started in (("new", _now() - grace + timedelta(seconds=30)), ("overdue", _now() - grace)):
        add_grant(database, add_person(database, name, started_at=started))
    assert check(http, "new").json["allow"] is True
    overdue = check(http, "overdue").json
    assert [x["code"] for x in overdue["reasons"]] == ["training_missing:security-awareness"]


@pytest.mark.parametrize("user, resource, code", [
    ("nobody", "vpn", "person_unknown"),
    ("alice", "nope", "resource_unknown"),
    ("ghost", "vpn", "person_inactive"),  # a deleted person is still that person: inactive
])
def test_unknown_user_or_resource_is_a_200_deny(database, http, user, resource, code):
    people = {"alice": allowed_person(database), "ghost": allowed_person(database, "ghost", deleted=True)}
    r = check(http, user, resource)
    assert r.status_code == 200 and r.json["allow"] is False
    assert [x["code"] for x in r.json["reasons"]] == [code]
    (subject, detail), = [(row[4], row[7]) for row in _journal(database, "kind = 'check'")]
    assert subject == people.get(user)
    assert detail == {"user": user}


def test_every_decision_is_committed_before_its_answer(database, http):
    allowed_person(database)
    add_person(database, "dave")
    for user in ("alice", "dave", "alice", "nobody"):
        r = check(http, user)
        # Read from another connection as the answer arrives: the row is there, committed.
        row, = _journal(database, "seq = %s", (r.json["decision_id"],))
        assert row[2] == ("allow" if r.json["allow"] else "deny") and row[7] == {"user": user}
    with psycopg.connect(database.app_url) as conn:
        assert journal.verify(conn).ok


# --- guards and bad input ------------------------------------------------------------------------


def test_a_token_without_the_scope_is_403_and_journaled_as_a_check(database, client):
    allowed_person(database)
    token = _token(database, scopes=("scim",), name="okta")
    r = client.post("/api/v1/access/check", json={"user": "alice", "resource": "vpn"},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.content_type == "application/problem+json"
    assert "allow" not in r.json
    (_, kind, outcome, actor, *_), = _journal(database)
    assert (kind, outcome, actor) == ("check", "refused", "client:okta")
    r = client.get("/api/v1/access/check?user=alice&resource=vpn")
    assert r.status_code == 401
    client.application.extensions["gatehouse"].refusals.flush(everything=True)  # no token: counted
    assert [row[1:4] for row in _journal(database)][-1] == ("check", "refused", "anonymous")


@pytest.mark.parametrize("body, problem", [
    ({"resource": "vpn"}, "user is required"),
    ({"user": "alice"}, "resource is required"),
    ({"user": "a" * 257, "resource": "vpn"}, "longer than 256"),
    ({"user": "alice", "resource": "v" * 257}, "longer than 256"),
    ({"user": "al\x00ice", "resource": "vpn"}, "NUL character"),  # service/app.py refuses it before the view
    ({"user": 7, "resource": "vpn"}, "non-empty string"),
    ({"user": "", "resource": "vpn"}, "non-empty string"),
    (["alice", "vpn"], "JSON object"),
])
def test_bad_input_is_a_400_problem_and_changes_nothing(database, http, body, problem):
    client, headers = http
    r = client.post("/api/v1/access/check", json=body, headers=headers)
    assert r.status_code == 400 and r.content_type == "application/problem+json", r.json
    assert problem in r.json["detail"]
    assert _journal(database) == []


def test_non_json_and_bad_query_strings_are_400(database, http):
    client, headers = http
    r = client.post("/api/v1/access/check", data="user=alice&resource=vpn", headers=headers)
    assert r.status_code == 400 and "JSON object" in r.json["detail"]
    r = client.get("/api/v1/access/check?user=alice", headers=headers)
    assert r.status_code == 400 and "resource is required" in r.json["detail"]
    r = client.get("/api/v1/access/check", query_string={"user": "x" * 300, "resource": "vpn"}, headers=headers)
    assert r.status_code == 400
    assert _journal(database) == []


# --- FreeRADIUS rlm_rest -------------------------------------------------------------------------


def test_radius_answers_200_to_accept_and_401_to_reject_with_a_reply_message(database, services, http):
    client, headers = http
    allowed_person(database)
    add_completion(database, add_person(database, "erin"), _now())
    ok = client.post("/api/v1/access/radius", json={"user": "alice"}, headers=headers)  # resource defaults to vpn
    assert ok.status_code == 200
    assert ok.json == {"reply:Reply-Message": {"value": "access to vpn is granted and every requirement holds",
                                               "do_xlat": False}}
    no = client.post("/api/v1/access/radius", json={"user": "erin", "resource": "vpn"}, headers=headers)
    assert no.status_code == 401 and no.json == {"reply:Reply-Message": {"value": "no grant for vpn", "do_xlat": False}}
    rows = _journal(database, "kind = 'check'")
    assert [(r[2], r[5], r[7]) for r in rows] == [("allow", "vpn", {"user": "alice", "via": "radius"}),
                                                  ("deny", "vpn", {"user": "erin", "via": "radius"})]


def test_radius_refusals_and_bad_input_are_401_with_the_reason(database, client):
    r = client.post("/api/v1/access/radius", json={"user": "alice"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json["reply:Reply-Message"]["value"].startswith("unauthenticated: ")
    assert _journal(database)[0][1:4] == ("check", "refused", "anonymous")
    token = _token(database)
    r = client.post("/api/v1/access/radius", json={"user": "x" * 300}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json == {
        "reply:Reply-Message": {"value": "bad_request: user is longer than 256 characters", "do_xlat": False}}


# --- member lists --------------------------------------------------------------------------------


def test_members_lists_the_people_allowed_now_with_an_etag(database, services, http):
    client, headers = http
    for name in ("zoe", "alice", "bob"):
        allowed_person(database, name)
    lapsed = add_person(database, "lapsed")
    add_grant(database, lapsed)
    add_completion(database, lapsed, _now() - 2 * YEAR)
    add_grant(database, add_person(database, "revoked"), state="revoked", reason="left")
    allowed_person(database, "gone", deleted=True)
    add_person(database, "nogrant")
    url = "/api/v1/access/resources/vpn/members"
    r = client.get(url, headers=headers)
    assert r.status_code == 200
    assert r.json == {"resource": "vpn", "members": ["alice", "bob", "zoe"], "policy_version": services.policy.version}
    etag = r.headers["ETag"]
    same = client.get(url, headers={**headers, "If-None-Match": etag})
    assert same.status_code == 304 and same.data == b"" and same.headers["ETag"] == etag
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE grants SET state = 'suspended', reason = 'test' WHERE person_id = "
                     "(SELECT id FROM people WHERE user_name = 'bob')")
    changed = client.get(url, headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.json["members"] == ["alice", "zoe"]
    assert changed.headers["ETag"] != etag
    assert [(row[2], row[7]["members"]) for row in _journal(database, "kind = 'check'")] == [
        ("members", 3), ("members", 3), ("members", 2)]


def test_members_of_an_unknown_resource_is_404_and_the_scope_is_required(database, http):
    client, headers = http
    assert client.get("/api/v1/access/resources/nope/members", headers=headers).status_code == 404
    assert client.get("/api/v1/access/resources/vpn/members").status_code == 401
    r = client.get("/api/v1/access/resources/vpn/members", headers=headers)
    assert r.status_code == 200 and r.json["members"] == []


# --- explain -------------------------------------------------------------------------------------


def test_explain_prints_the_decision_and_the_dates_and_exits_1_on_deny(database, services, app):
    allowed_person(database)
    late = add_person(database, "late")
    add_grant(database, late)
    add_completion(database, late, _now() - _lapse_period(services) - timedelta(days=3))
    ok = gatehouse("access", "explain", "alice", "vpn", env=db_env(database))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ALLOW: alice may use vpn (Corporate VPN) now")
    assert "Security awareness training (security-awareness): completed " in ok.stdout
    assert "; lapses " in ok.stdout and "(in 3" in ok.stdout  # 365 + 14 - 30 days ahead
    no = gatehouse("access", "explain", "late", "vpn", env=db_env(database))
    assert no.returncode == 1 and no.stdout.startswith("DENY: late may not use vpn")
    assert "[training_lapsed:security-awareness]" in no.stdout and "(3 days ago)" in no.stdout
    assert f"Policy version: {services.policy.version}" in no.stdout
    nobody = gatehouse("access", "explain", "nobody", "vpn", env=db_env(database))
    assert nobody.returncode == 1 and "no such person [person_unknown]" in nobody.stdout
    assert _journal(database) == []  # explaining is a read


# --- fail closed, for real: a PostgreSQL server of its own that the test stops and starts ---------


@pytest.mark.slow
def test_fail_closed_when_postgresql_stops_and_answers_again_after_it_restarts(stoppable, tmp_path):
    database = stoppable.migrated()
    settings = Settings(database_url=database.app_url, database_owner_url=database.owner_url, data_dir=tmp_path,
                        log_level="WARNING", db_timeout=2.0)
    services = bootstrap.build(settings, database)
    try:
        http = (create_app(services=services).test_client(), {"Authorization": f"Bearer {_token(database)}"})
        allowed_person(database)
        assert check(http, "alice").json["allow"] is True

        stoppable.stop()
        for ask in (lambda: check(http, "alice"), lambda: check(http, "alice", method="get")):
            started = time.monotonic()
            r = ask()
            assert time.monotonic() - started < 2 * settings.db_timeout + 1
            assert r.status_code == 503 and r.json["allow"] is False, r.json
            assert r.json["reasons"][0]["code"] == "unavailable" and r.json["code"] == "unavailable"
            assert r.json["policy_version"] == services.policy.version and r.json["decision_id"] is None
            assert r.headers["Retry-After"] == "5"
        radius = http[0].post("/api/v1/access/radius", json={"user": "alice"}, headers=http[1])
        assert radius.status_code == 401 and radius.json["reply:Reply-Message"]["value"].startswith("unavailable: ")
        members = http[0].get("/api/v1/access/resources/vpn/members", headers=http[1])
        assert members.status_code == 503 and members.json["code"] == "unavailable"
        assert members.headers["Retry-After"] == "5"

        stoppable.start()
        deadline, r = time.monotonic() + 30, None
        while time.monotonic() < deadline:  # the same app, not rebuilt: its pool reconnects by itself
            r = check(http, "alice")
            if r.status_code == 200:
                break
            assert r.json["allow"] is False
            time.sleep(0.5)
        assert r.status_code == 200 and r.json["allow"] is True, r.json
        assert _journal(database, "seq = %s", (r.json["decision_id"],))[0][2] == "allow"
    finally:
        services.close()


def test_an_app_whose_database_is_unreachable_answers_503_deny(settings, database):
    bad = replace(database, app_url="postgresql://nobody@127.0.0.1:1/none")
    services = bootstrap.build(replace(settings, db_timeout=1.0), bad)
    headers = {"Authorization": "Bearer x"}
    try:
        http = create_app(services=services).test_client()
        checks = [http.post("/api/v1/access/check", json={"user": "alice", "resource": "vpn"}, headers=headers),
                  http.get("/api/v1/access/check?user=alice&resource=vpn", headers=headers)]
        members = http.get("/api/v1/access/resources/vpn/members", headers=headers)
    finally:
        services.close()
    for r in checks:
        assert r.status_code == 503 and r.json["allow"] is False and r.json["reasons"][0]["code"] == "unavailable"
        assert r.headers["Retry-After"] == "5"  # a gateway may try again; the answer is deny until then
    assert members.status_code == 503 and members.json["code"] == "unavailable"
    assert members.headers["Retry-After"] == "5"  # the app's handler for every other 503 (service/app.py)
