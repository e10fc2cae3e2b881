"""What the browser tests share: `gatehouse serve` as a real process, Chromium with a virtual authenticator."""


import pytest
from playwright.sync_api import sync_playwright

from tests.support.browser import ARGS, CHROMIUM
from tests.support.cli import serving


@pytest.fixture
def server(database, tmp_path):
    """`gatehouse serve` on this test's database, as a real process."""
    with serving(database, tmp_path) as base:
        yield base


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


