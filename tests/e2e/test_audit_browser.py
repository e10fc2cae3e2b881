"""The auditor's dashboard and revocation log in Chromium, signed in as SSO signs people in; screenshots go to
GATEHOUSE_SCREENSHOTS (default: the test's tmp dir)."""

from datetime import UTC, datetime

import psycopg
from playwright.sync_api import expect

from service.auth import store as auth_store
from tests.support import axe
from tests.support.audit import story
from tests.support.browser import shots_dir


def test_an_auditor_reads_the_dashboard_and_the_revocation_log(server, browser_page, database, tmp_path):
    page, shots = browser_page, shots_dir(tmp_path)
    told = story(database)
    with psycopg.connect(database.app_url) as conn:
        token = auth_store.create_session(conn, lifetime=600, person_id=told["audra"])
    page.context.add_cookies([{"name": "gatehouse_session", "value": token, "url": server}])
    page.goto(server + "/admin")
    page.wait_for_url(server + "/admin/audit")
    for heading in ("Audit", "Suspensions and revocations per week, by reason", "Gateway checks per day, allowed "
                    "and denied", "People with current training, per course (%)",
                    "Access review campaigns: items by outcome"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    chart = page.get_by_role("img", name="Gateway checks per day, allowed and denied")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["height"] > 100  # drawn, not an empty box
    expect(page.locator("#chart-checks desc")).to_have_text("Gateway checks per day, allowed and denied. "
                                                             f"{_today()}: allow 121, deny 1.")
    page.screenshot(path=shots / "audit-dashboard.png", full_page=True)

    page.get_by_role("link", name="Revocation log").click()
    page.wait_for_url(server + "/admin/audit/revocations")
    expect(page.get_by_role("heading", name="Every suspension and revocation, newest first")).to_be_visible()
    rows = page.locator("#revocations tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("review_missed:q4")
    expect(rows.nth(1)).to_contain_text("Ivo Petrov")
    expect(rows.nth(1)).to_contain_text("security-awareness: lapsed")
    page.get_by_label("Reason code").fill("review_missed:q4")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    page.screenshot(path=shots / "audit-revocations.png", full_page=True)

    page.goto(server + "/admin/audit/journal?person=ivo.petrov&kind=suspend")
    expect(page.locator("#journal tbody tr")).to_have_count(1)


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def test_the_audit_pages_have_no_wcag_21_aa_violation_with_data_in_them(server, browser_page, database):
    page = browser_page
    axe.install(page.context)
    told = story(database)
    with psycopg.connect(database.app_url) as conn:
        token = auth_store.create_session(conn, lifetime=600, person_id=told["audra"])
    page.context.add_cookies([{"name": "gatehouse_session", "value": token, "url": server}])
    for path in ("/admin/audit", "/admin/audit/journal", "/admin/audit/journal?kind=nonsense",
                 "/admin/audit/revocations", f"/admin/audit/people/{told['ivo']}", "/admin/audit/training"):
        page.goto(server + path)
        assert axe.violations(page) == [], path
