"""The admin console in a real browser: Debian's Chromium, Playwright, a CDP virtual authenticator.

Enroll through the URL that `gatehouse admin enroll` prints, sign in again,
create an API client from the console; screenshots of each page are kept in
GATEHOUSE_SCREENSHOTS (default: the test's tmp dir).
"""

import psycopg
from playwright.sync_api import expect

from tests.support.browser import shots_dir
from tests.support.cli import db_env, gatehouse


def test_enroll_sign_in_and_create_a_client_in_a_real_browser(server, browser_page, database, tmp_path):
    page, shots = browser_page, shots_dir(tmp_path)
    enrolled = gatehouse("admin", "enroll", "ada@example.com", env={**db_env(database), "GATEHOUSE_BASE_URL": server})
    assert enrolled.returncode == 0, enrolled.stderr
    page.goto(enrolled.stdout.strip())
    expect(page.get_by_role("heading", name="Register your first security key")).to_be_visible()
    page.screenshot(path=shots / "enroll.png", full_page=True)
    page.get_by_role("button", name="Register security key").click()
    page.wait_for_url(server + "/admin")
    expect(page.locator("#few-keys")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(server + "/admin/login")
    page.screenshot(path=shots / "login.png", full_page=True)
    page.get_by_role("button", name="Sign in with security key").click()
    page.wait_for_url(server + "/admin")

    form = page.locator("form[data-action='clients.create']")
    form.get_by_label("Name").fill("vpn-gateway")
    form.get_by_label("access:check").check()
    form.get_by_role("button", name="Create client").click()
    secret = page.locator("#secret")
    expect(secret).to_be_visible()
    expect(secret).to_contain_text("client_id: gh_")
    page.screenshot(path=shots / "console.png", full_page=True)

    page.get_by_role("link", name="Access").click()
    page.wait_for_url(server + "/admin/access")
    expect(page.get_by_role("heading", name="Group rules")).to_be_visible()
    page.screenshot(path=shots / "access.png", full_page=True)

    with psycopg.connect(database.owner_url) as conn:
        assert conn.execute("SELECT name, scopes FROM api_clients").fetchall() == [("vpn-gateway", ["access:check"])]
        actions = [
            r[0] for r in conn.execute("SELECT detail->>'action' FROM journal WHERE outcome = 'ok' ORDER BY seq")
        ]
    assert actions == ["admins.enroll", "keys.enroll", "signout", "signin", "clients.create"]
