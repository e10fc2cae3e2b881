"""The admin console in a real browser: Debian's Chromium, Playwright, a CDP virtual authenticator.

Enroll through the URL that `gatehouse admin enroll` prints, sign in again,
create an API client from the console; screenshots of each page are kept in
GATEHOUSE_SCREENSHOTS (default: the test's tmp dir).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import db_env, gatehouse
from tests.support.net import free_port, wait_ready

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).exists()), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def server(database, tmp_path):
    """`gatehouse serve` on this test's database, as a real process."""
    port = free_port()
    base = f"http://localhost:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(db_env(database), GATEHOUSE_PORT=str(port), GATEHOUSE_BASE_URL=base, GATEHOUSE_WORKERS="1",
               GATEHOUSE_HOST="127.0.0.1")
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("gatehouse")), "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


@pytest.fixture
def browser_page(tmp_path):
    assert CHROMIUM, "Debian's chromium is not installed (bash tests/run installs it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "usb", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})
        yield page
        context.close()
        browser.close()


def shots_dir(tmp_path) -> Path:
    path = Path(os.environ.get("GATEHOUSE_SCREENSHOTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


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
