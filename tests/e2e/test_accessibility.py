"""axe-core finds no WCAG 2.1 AA violation on the reviewer's page and on the console's pages, in Chromium."""

import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg

import policies
from policies import parse_policy
from service.reviews import campaigns
from tests.support import axe
from tests.support.cli import db_env, gatehouse
from tests.support.people import seed_staff
from tests.support.reviews import add_grant, add_person, rows


def _campaign(database, server) -> str:
    mona = add_person(database, "mona")
    for name in ("alice", "bob"):
        add_grant(database, add_person(database, name, manager=mona), "vpn")
    add_grant(database, add_person(database, "olga"), "vpn")  # no manager: the admins' queue
    data = Path(policies.__file__).with_name("default.toml").read_bytes()
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        started = campaigns.start(conn, parse_policy(data, source="default.toml"), resources=["vpn"], due_days=14,
                                  now=datetime.now(UTC), origin="operator", actor="operator:test", base_url=server)
    return started.key


def test_the_review_page_has_no_wcag_21_aa_violation(server, browser_page, database):
    page = browser_page
    axe.install(page.context)
    _campaign(database, server)
    (body,), = rows(database, "SELECT body FROM notifications WHERE kind = 'review_request'")
    page.goto(re.search(r"http://localhost:\d+/reviews/\S+", body).group(0))
    assert page.locator("tbody tr").count() == 2
    assert axe.violations(page) == []
    page.goto(page.url + "x")  # the refusal page too
    assert "not valid" in page.locator("main").inner_text()
    assert axe.violations(page) == []


def test_the_console_pages_have_no_wcag_21_aa_violation(server, browser_page, database):
    page = browser_page
    axe.install(page.context)
    staff = seed_staff(database)
    key = _campaign(database, server)
    page.goto(server + "/admin/login")
    assert axe.violations(page) == [], "/admin/login"
    enrolled = gatehouse("admin", "enroll", "ada@example.com", env={**db_env(database), "GATEHOUSE_BASE_URL": server})
    assert enrolled.returncode == 0, enrolled.stderr
    page.goto(enrolled.stdout.strip())
    assert axe.violations(page) == [], "enroll"
    page.get_by_role("button", name="Register security key").click()
    page.wait_for_url(server + "/admin")
    for path in ("/admin", "/admin/access", "/admin/people", f"/admin/people/{staff['ivo']}", "/admin/reviews",
                 f"/admin/reviews/{key}", "/admin/outbox", "/admin/audit", "/admin/audit/journal",
                 "/admin/audit/revocations", f"/admin/audit/people/{staff['ivo']}", "/admin/audit/training", "/"):
        page.goto(server + path)
        assert axe.violations(page) == [], path
