"""The Outbound page in Chromium: a dead letter retried by an admin with a (virtual) security key.

A screenshot of the page before and after is kept in GATEHOUSE_SCREENSHOTS (default: the test's tmp dir).
"""

from playwright.sync_api import expect

from service.outbox.delivery import deliver_due
from tests.support.browser import shots_dir
from tests.support.cli import db_env, gatehouse, serving
from tests.support.factories import add_grant, add_person, rows
from tests.support.net import free_port
from tests.support.outbox import outbox_services
from tests.support.policy import policy_toml, resource

TARGET = {"key": "gh-scim", "type": "scim", "resource": "github", "max_attempts": 1,
          "url": f"http://127.0.0.1:{free_port()}", "token_env": "GH_SCIM_TOKEN"}


def test_an_admin_retries_a_dead_letter_in_a_real_browser(browser_page, settings, database, tmp_path, monkeypatch):
    page, shots = browser_page, shots_dir(tmp_path)
    monkeypatch.setenv("GH_SCIM_TOKEN", "t")
    services = outbox_services(settings, database, [TARGET])
    try:
        add_grant(database, add_person(database, "hal"), "github")
        assert deliver_due(services)["dead"] == 1  # the target refuses: one attempt, dead
    finally:
        services.close()
    (row_id,), = rows(database, "SELECT id FROM outbox")
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml(resources=[resource("vpn", kind="vpn"), resource("github")], targets=[TARGET]))
    with serving(database, tmp_path, GATEHOUSE_POLICY_FILE=str(policy)) as server:
        enrolled = gatehouse("admin", "enroll", "ada@example.com",
                             env={**db_env(database), "GATEHOUSE_BASE_URL": server})
        assert enrolled.returncode == 0, enrolled.stderr
        page.goto(enrolled.stdout.strip())
        page.get_by_role("button", name="Register security key").click()
        page.wait_for_url(server + "/admin")
        page.get_by_role("link", name="Outbound").click()
        page.wait_for_url(server + "/admin/outbox")
        dead = page.locator(f"#dead tr[data-row='{row_id}']")
        expect(dead).to_contain_text("Connection refused")
        expect(page.locator("#targets tr[data-target='gh-scim'] td").nth(6)).to_have_text("1")  # dead letters
        page.screenshot(path=shots / "outbox-dead.png", full_page=True)
        with page.expect_navigation():
            dead.get_by_role("button", name="Retry").click()
        expect(page.locator("#dead")).to_contain_text("No dead letters.")
        page.screenshot(path=shots / "outbox-retried.png", full_page=True)
    assert rows(database, "SELECT state, attempts FROM outbox") == [("intent", 0)]
    assert rows(database, "SELECT detail->>'action', (detail->>'outbox')::bigint FROM journal WHERE kind = 'admin' "
                          "AND detail->>'action' LIKE 'outbox.%%'") == [("outbox.retry", row_id)]
