"""The reviewer's page in Chromium, by keyboard alone: open the e-mailed link, tab to a revoke, press Enter.

A screenshot of the page is kept in GATEHOUSE_SCREENSHOTS (default: the test's tmp dir).
"""

import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg

import policies
from policies import parse_policy
from service.reviews import campaigns
from tests.support.browser import shots_dir
from tests.support.factories import rows
from tests.support.reviews import add_grant, add_person


def test_a_reviewer_revokes_by_keyboard_in_a_real_browser(server, browser_page, database, tmp_path):
    page = browser_page
    mona = add_person(database, "mona")
    alice = add_person(database, "alice", manager=mona)
    add_grant(database, alice, "vpn")
    data = Path(policies.__file__).with_name("default.toml").read_bytes()
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        campaigns.start(conn, parse_policy(data, source="default.toml"), resources=["vpn"], due_days=14,
                        now=datetime.now(UTC), origin="operator", actor="operator:test", base_url=server)
    (body,), = rows(database, "SELECT body FROM notifications WHERE kind = 'review_request'")
    link = re.search(r"http://localhost:\d+/reviews/\S+", body).group(0)
    page.goto(link)
    assert "Access review" in page.title() or page.locator("h1").inner_text().startswith("Access review")
    page.screenshot(path=str(shots_dir(tmp_path) / "review-page.png"), full_page=True)
    for _ in range(40):  # Tab through the page until the revoke button has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent.trim()") == "Revoke":
            break
    else:
        raise AssertionError("the revoke button is not reachable by keyboard")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Recorded 1 decision" in page.locator("main").inner_text(), page.locator("main").inner_text()
    assert rows(database, "SELECT state, reason FROM grants")[0][0] == "revoked"
    page.screenshot(path=str(shots_dir(tmp_path) / "review-decided.png"), full_page=True)


def _tab_to(page, predicate: str, what: str, limit: int = 60) -> None:
    """Press Tab until `predicate` (a JS expression on `el`, the focused element) holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!el && ({predicate}); }})()"):
            return
    raise AssertionError(f"{what} is not reachable by keyboard")


def test_a_reviewer_filters_selects_and_approves_in_bulk_by_keyboard(server, browser_page, database):
    from tests.support.reviews import used

    page = browser_page
    mona = add_person(database, "mona")
    for name in ("alice", "bob", "anna"):
        pid = add_person(database, name, manager=mona, department="sales" if name == "bob" else "eng")
        add_grant(database, pid, "vpn")
        used(database, pid, "vpn")  # in use: the recommendation is keep, an approval takes effect
    data = Path(policies.__file__).with_name("default.toml").read_bytes()
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        campaigns.start(conn, parse_policy(data, source="default.toml"), resources=["vpn"], due_days=14,
                        now=datetime.now(UTC), origin="operator", actor="operator:test", base_url=server)
    (body,), = rows(database, "SELECT body FROM notifications WHERE kind = 'review_request'")
    page.goto(re.search(r"http://localhost:\d+/reviews/\S+", body).group(0))
    _tab_to(page, "el.id === 'filter'", "the filter")
    page.keyboard.type("eng")
    _tab_to(page, "el.id === 'select-visible'", "select all visible")
    page.keyboard.press("Space")
    _tab_to(page, "el.id === 'confirm'", "the confirmation")
    page.keyboard.type("2")
    _tab_to(page, "el.textContent.trim() === 'Approve selected'", "approve selected")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Recorded 2 decisions" in page.locator("main").inner_text(), page.locator("main").inner_text()
    assert rows(database, "SELECT p.user_name, i.decision FROM review_items i JOIN people p ON p.id = i.person_id "
                          "ORDER BY 1") == [("alice", "approve"), ("anna", "approve"), ("bob", None)]
