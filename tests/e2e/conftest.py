"""What the browser tests share: `gatehouse serve` as a real process, Chromium with a virtual authenticator."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.support.browser import ARGS, CHROMIUM
from tests.support.cli import db_env
from tests.support.net import free_port, wait_ready


@contextlib.contextmanager
def serving(database, tmp_path, **settings):
    """`gatehouse serve` on this test's database, as a real process, with these GATEHOUSE_* settings more."""
    port = free_port()
    base = f"http://localhost:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(db_env(database), GATEHOUSE_PORT=str(port), GATEHOUSE_BASE_URL=base, GATEHOUSE_WORKERS="1",
               GATEHOUSE_HOST="127.0.0.1", **settings)
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


