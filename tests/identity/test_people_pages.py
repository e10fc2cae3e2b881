"""People pages and roles: `gatehouse people role`, the roles.add/remove admin actions, read-only hr pages."""

import re

import pytest

from tests.support.admin import ORIGIN, step_up
from tests.support.cli import db_env, gatehouse
from tests.support.people import seed_staff, session_for
from tests.support.people import sql as _sql


@pytest.fixture
def staff(database):
    return seed_staff(database)


# --- roles -----------------------------------------------------------------------------------------------------


def test_people_role_add_and_remove_from_the_cli(database, staff):
    env = db_env(database)
    added = gatehouse("people", "role", "add", "IVO@example.com", "auditor", env=env)
    assert added.returncode == 0, added.stderr
    assert "ivo@example.com (ivo.petrov) now holds the auditor role" in added.stdout
    assert _sql(database, "SELECT role, granted_by LIKE 'operator:%%' FROM person_roles WHERE person_id = %s",
                (staff["ivo"],)) == [("auditor", True)]

    again = gatehouse("people", "role", "add", "ivo@example.com", "auditor", env=env)
    assert again.returncode == 1 and again.stderr.strip() == ("gatehouse: error: ivo@example.com already holds "
                                                              "the auditor role")
    for bad, code, text in ((("nobody@example.com", "hr"), 1, "no person has the e-mail address nobody@example.com"),
                            (("jon@example.com", "hr"), 1, "no person has the e-mail address jon@example.com"),
                            (("ivo@example.com", "admin"), 2, "'admin' is not one of 'hr', 'auditor'")):
        refused = gatehouse("people", "role", "add", *bad, env=env)
        assert refused.returncode == code and text in refused.stderr and len(refused.stderr.splitlines()) == 1

    removed = gatehouse("people", "role", "remove", "ivo@example.com", "auditor", env=env)
    assert removed.returncode == 0, removed.stderr
    gone = gatehouse("people", "role", "remove", "ivo@example.com", "auditor", env=env)
    assert gone.returncode == 1 and "does not hold the auditor role" in gone.stderr
    assert _sql(database, "SELECT count(*) FROM person_roles WHERE person_id = %s", (staff["ivo"],)) == [(0,)]
    rows = _sql(database, "SELECT subject, actor LIKE 'operator:%%', detail->>'action', detail->>'role', "
                          "detail->>'email' FROM journal WHERE kind = 'admin' ORDER BY seq")
    assert rows == [(staff["ivo"], True, "roles.add", "auditor", "ivo@example.com"),
                    (staff["ivo"], True, "roles.remove", "auditor", "ivo@example.com")]


def test_roles_add_is_an_admin_action_bound_to_its_role(web, signed_in, database, staff):
    r, _, _ = step_up(web, signed_in, "roles.add", {"email": "ivo@example.com", "role": "auditor"},
                      use_params={"email": "ivo@example.com", "role": "hr"})
    assert r.status_code == 403 and r.json["code"] == "webauthn_wrong_body"
    r, _, _ = step_up(web, signed_in, "keys.remove", {"email": "ivo@example.com", "role": "hr"},
                      use_action="roles.add")
    assert r.status_code == 403 and r.json["code"] == "webauthn_wrong_action"
    assert _sql(database, "SELECT count(*) FROM person_roles WHERE person_id = %s", (staff["ivo"],)) == [(0,)]

    r, _, _ = step_up(web, signed_in, "roles.add", {"email": "ivo@example.com", "role": "hr"})
    assert r.status_code == 200, r.json
    assert _sql(database, "SELECT role, granted_by FROM person_roles WHERE person_id = %s",
                (staff["ivo"],)) == [("hr", "admin:ada@example.com")]
    r, _, _ = step_up(web, signed_in, "roles.add", {"email": "ivo@example.com", "role": "hr"})
    assert r.status_code == 409
    r, _, _ = step_up(web, signed_in, "roles.remove", {"email": "ivo@example.com", "role": "hr"})
    assert r.status_code == 200
    assert _sql(database, "SELECT count(*) FROM person_roles WHERE person_id = %s", (staff["ivo"],)) == [(0,)]
    rows = _sql(database, "SELECT subject, actor, detail->>'action', detail->>'role', detail ? 'credential_id' "
                          "FROM journal WHERE kind = 'admin' AND outcome = 'ok' AND detail->>'action' LIKE 'roles.%%' "
                          "ORDER BY seq")
    assert rows == [(staff["ivo"], "admin:ada@example.com", "roles.add", "hr", True),
                    (staff["ivo"], "admin:ada@example.com", "roles.remove", "hr", True)]


# --- the pages ---------------------------------------------------------------------------------------------------


def _page(web, path):
    r = web.get(path)
    return r.status_code, r.get_data(as_text=True)


@pytest.mark.parametrize("q", ["petrov", "IVO@EXAMPLE.COM", "E-7731", "engineer", "ivo.petrov"])
def test_hr_finds_a_person_by_name_email_number_or_department(web, database, staff, q):
    session_for(web, database, staff["hana"])
    status, page = _page(web, f"/admin/people?q={q}")
    assert status == 200
    assert f'href="/admin/people/{staff["ivo"]}"' in page and f'/admin/people/{staff["hana"]}"' not in page


def test_search_takes_like_wildcards_literally(web, database, staff):
    session_for(web, database, staff["hana"])
    assert "Nobody matches." in _page(web, "/admin/people?q=%25")[1]
    assert "Nobody matches." in _page(web, "/admin/people?q=iv_")[1]


def test_a_persons_page_tells_their_whole_story(web, database, staff):
    csrf = session_for(web, database, staff["hana"])
    status, page = _page(web, f"/admin/people/{staff['ivo']}")
    assert status == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "<h1>Ivo Petrov</h1>" in page
    assert "uid=ivo" in text and "00u-ivo" in text and "department ldap" in text and "emails scim:okta" in text
    assert "ivo ldap" in text and "ivo.petrov userName" in text  # every login, and which source gave it
    assert f'href="/admin/people/{staff["hana"]}">Hana' not in page  # manager named by display name or userName
    assert f'href="/admin/people/{staff["hana"]}"' in page
    assert "vpn (Corporate VPN) active granted by admin:ada@example.com" in text
    assert "allow" in text and "vpn-users ldap" in text
    assert "Security awareness training" in text and "due soon" in text
    assert "roles.add" not in page and "roles.remove" not in page  # hr sees no buttons
    assert f'value="{csrf}"' in page  # the sign-out form


def test_pages_need_admin_or_hr(web, database, staff):
    assert _page(web, "/admin/people")[0] == 401
    session_for(web, database, staff["ivo"])  # no role at all: would not even pass the OIDC sign-in
    assert _page(web, "/admin/people")[0] == 403
    assert _page(web, f"/admin/people/{staff['hana']}")[0] == 403


def test_admin_sees_role_buttons_and_leavers(web, signed_in, staff):
    status, page = _page(web, f"/admin/people/{staff['ivo']}")
    assert status == 200 and 'data-action="roles.add" data-email="ivo@example.com" data-role="hr"' in page
    status, page = _page(web, f"/admin/people/{staff['jon']}")
    assert status == 200 and "left on" in page and "roles.add" not in page
    assert _page(web, "/admin/people/not-a-uuid")[0] == 404


def test_dashboard_counts_people_grants_and_lapses(web, signed_in, database, staff):
    _sql(database, "INSERT INTO job_runs (job, trigger, runner, outcome, error, finished_at) "
                   "VALUES ('ldap-sync', 'schedule', 'w1', 'failed', 'connection refused', now())")
    status, page = _page(web, "/admin")
    assert status == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "ldap + scim 1 1" in text and "manual 1 1" in text  # jon left: not counted
    assert "vpn (Corporate VPN) 1 0" in text
    lapsing = text[text.index("Lapsing in the next 30 days"):text.index("Failed jobs")]
    assert "Ivo Petrov Security awareness training" in lapsing and "vpn" in lapsing
    assert "ldap-sync schedule" in text and "connection refused" in text


def test_hr_at_the_console_goes_to_the_people_pages(web, database, staff):
    session_for(web, database, staff["hana"])
    r = web.get("/admin")
    assert r.status_code == 302 and r.location.endswith("/admin/people")


# --- an hr person or an auditor changes nothing, route by route ------------------------------------------------

_UNCHANGING = ("journal", "journal_head", "web_sessions")  # refusals are journaled; the hr session is the test's


def _snapshot(database) -> dict:
    tables = [r[0] for r in _sql(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    return {t: _sql(database, f"SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {t} x")[0][0]
            for t in tables if t not in _UNCHANGING}


@pytest.mark.parametrize("role", ["hr", "auditor"])
def test_hr_and_auditors_change_nothing_route_by_route(web, database, staff, role):
    _sql(database, "UPDATE person_roles SET role = %s WHERE person_id = %s", (role, staff["hana"]))
    csrf = session_for(web, database, staff["hana"])
    app = web.application
    web.post("/admin/api/login/begin", headers={"Origin": ORIGIN})  # the service's own key, made once at first use
    before = _snapshot(database)
    tried, forbidden = [], 0
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}):
            if rule.rule == "/logout":
                continue  # the hr person's own sign-out (OIDC), the one thing they may end
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: staff["ivo"] if "id" in m.group(1) else "x", rule.rule)
            body = {"params": {"email": "ivo@example.com", "role": "hr", "name": "x", "user": "ivo.petrov",
                               "resource": "vpn", "group": "vpn-users"}, "assertion": {}}
            r = web.open(path, method=method, json=body, headers={"Origin": ORIGIN, "X-CSRF-Token": csrf})
            tried.append(rule.rule)
            forbidden += r.status_code in (401, 403)
            allowed = (200,) if rule.rule == "/admin/api/login/begin" else ()  # a signed challenge: writes nothing
            assert r.status_code in (400, 401, 403, 404, 405, *allowed), (method, rule.rule, r.status_code)
    assert {"/admin/api/roles/add", "/admin/api/roles/remove", "/admin/api/grants/grant"} <= set(tried)
    assert _snapshot(database) == before
    refused = _sql(database, "SELECT count(*) FROM journal WHERE outcome = 'refused'")[0][0]
    assert forbidden > 20 and refused >= forbidden  # a request with a session cookie: each refusal journaled
    for path in ("/admin/access", "/admin/sync"):
        if any(r.rule == path for r in app.url_map.iter_rules()):
            assert web.get(path).status_code == 403
