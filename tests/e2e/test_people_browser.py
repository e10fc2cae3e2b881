"""The dashboard and the people pages in Chromium: an admin gives the hr role with a security key; the hr person
then reads the same pages and finds no button. Screenshots go to GATEHOUSE_SCREENSHOTS (default: tmp dir)."""

import psycopg
from playwright.sync_api import expect

from service.auth import store as auth_store
from tests.support.browser import shots_dir
from tests.support.cli import db_env, gatehouse
from tests.support.people import seed_staff, sql


def _enroll(page, server, database):
    enrolled = gatehouse("admin", "enroll", "ada@example.com", env={**db_env(database), "GATEHOUSE_BASE_URL": server})
    assert enrolled.returncode == 0, enrolled.stderr
    page.goto(enrolled.stdout.strip())
    page.get_by_role("button", name="Register security key").click()
    page.wait_for_url(server + "/admin")


def test_dashboard_people_pages_and_the_hr_role_in_a_real_browser(server, browser_page, database, tmp_path):
    page, shots = browser_page, shots_dir(tmp_path)
    staff = seed_staff(database)
    _enroll(page, server, database)
    for heading in ("Admin console", "People by source", "Active grants per resource", "Lapsing in the next 30 days",
                    "Held syncs", "Failed jobs"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.locator("#lapsing")).to_contain_text("Ivo Petrov")
    page.screenshot(path=shots / "dashboard.png", full_page=True)

    page.get_by_role("link", name="People", exact=True).click()
    page.wait_for_url(server + "/admin/people")
    page.get_by_label("Name, e-mail, employee number or department").fill("E-7731")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="People matching “E-7731”")).to_be_visible()
    page.screenshot(path=shots / "people.png", full_page=True)
    page.get_by_role("link", name="Ivo Petrov").click()
    page.wait_for_url(f"{server}/admin/people/{staff['ivo']}")
    for heading in ("Ivo Petrov", "Identity", "Sources", "Roles", "Grants", "Training", "Groups", "Recent journal"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()

    page.get_by_role("button", name="Give the auditor role").click()  # the virtual authenticator confirms it
    expect(page.get_by_role("button", name="Remove auditor")).to_be_visible()
    expect(page.locator("#journal")).to_contain_text("roles.add")
    page.screenshot(path=shots / "person-admin.png", full_page=True)
    assert sql(database, "SELECT role, granted_by FROM person_roles WHERE person_id = %s",
               (staff["ivo"],)) == [("auditor", "admin:ada@example.com")]

    # hana holds hr: signed in as the OIDC callback signs people in (a session and its cookie)
    with psycopg.connect(database.app_url) as conn:
        token = auth_store.create_session(conn, lifetime=600, person_id=staff["hana"])
    hr = page.context.browser.new_context(viewport={"width": 1100, "height": 900})
    hr.add_cookies([{"name": "gatehouse_session", "value": token, "url": server}])
    hr_page = hr.new_page()
    hr_page.goto(server + "/admin")
    hr_page.wait_for_url(server + "/admin/people")
    expect(hr_page.get_by_text("hana (read only)")).to_be_visible()
    hr_page.goto(f"{server}/admin/people/{staff['ivo']}")
    expect(hr_page.get_by_role("heading", name="Grants", exact=True)).to_be_visible()
    expect(hr_page.locator("#roles")).to_contain_text("auditor")
    assert hr_page.locator("button[data-action]").count() == 0
    hr_page.screenshot(path=shots / "person-hr.png", full_page=True)
    answer = hr_page.goto(server + "/admin/access")
    assert answer.status == 403
    hr.close()
