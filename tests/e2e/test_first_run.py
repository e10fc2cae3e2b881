"""A first run with nothing set but a data directory and a port: the embedded database, the front page, the
first admin enrolled in Chromium through the link `gatehouse admin enroll` prints, and logs that are all JSON."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
from playwright.sync_api import expect

from tests.support.browser import shots_dir
from tests.support.cli import gatehouse
from tests.support.net import free_port, wait_ready


def test_first_admin_enrolls_with_the_defaults(data_dir, browser_page, tmp_path):
    page, shots = browser_page, shots_dir(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(GATEHOUSE_DATA_DIR=str(data_dir), GATEHOUSE_PORT=str(port), GATEHOUSE_WORKERS="1")
    log_path = data_dir / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("gatehouse")), "serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        base = f"http://localhost:{port}"
        page.goto(base + "/")
        expect(page.get_by_role("heading", name="Next: enroll the first admin")).to_be_visible()
        page.screenshot(path=shots / "front-page.png", full_page=True)

        # The CLI knows only the data directory, not the port: the link names where the service really is.
        enrolled = gatehouse("admin", "enroll", "ada@example.com", env={"GATEHOUSE_DATA_DIR": str(data_dir)})
        assert enrolled.returncode == 0, enrolled.stderr
        link = enrolled.stdout.strip()
        assert link.startswith(base + "/admin/enroll/"), link
        page.goto(link)
        page.get_by_role("button", name="Register security key").click()
        page.wait_for_url(base + "/admin")
        expect(page.get_by_role("heading", name="Admin console")).to_be_visible()
        page.goto(base + "/")
        page.wait_for_url(base + "/admin")  # with an admin, the front page is the console

        # gunicorn's own refusal of an over-long request line is a JSON problem too
        long = requests.get(f"{base}/api/v1/access/check?user={'a' * 9000}&resource=vpn", timeout=10)
        assert long.status_code == 414 and long.headers["Content-Type"] == "application/problem+json"
        assert long.json()["status"] == 414
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    lines = log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line JSON: ours, gunicorn's, pgserver's none
    assert any(r["logger"] == "gunicorn.error" and "Listening at" in r["msg"] for r in records)
    assert not any(r["logger"] == "pgserver" for r in records)
