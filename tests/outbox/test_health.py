"""A target that keeps failing is quarantined (probes at 6 h, 12 h, 24 h, then daily), the admins told; the first
delivery that succeeds releases it."""

import dataclasses
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from service.access import store as grant_store
from service.admins import store as admins
from service.outbox.delivery import deliver_due
from service.outbox.health import quarantine_wait
from tests.support.factories import add_grant, add_person, rows
from tests.support.outbox import outbox_services
from tests.support.scimtool import TOKEN, ScimTool


def test_the_quarantine_waits_6_12_24_hours_then_daily():
    assert [quarantine_wait(step) for step in range(5)] == [timedelta(hours=h) for h in (6, 12, 24, 24, 24)]


@pytest.fixture
def down_tool(settings, database, monkeypatch):
    """A SCIM tool not started yet (its port refuses), a target with quarantine_after = 3, an admin to tell."""
    monkeypatch.setenv("GH_SCIM_TOKEN", TOKEN)
    tool = ScimTool()
    with psycopg.connect(database.app_url) as conn:
        admins.create_admin(conn, "ada@example.com", display_name=None, created_by="test")
    services = outbox_services(dataclasses.replace(settings, smtp_host="127.0.0.1"), database, [{
        "key": "gh-scim", "type": "scim", "resource": "github", "url": tool.url, "token_env": "GH_SCIM_TOKEN",
        "backoff_seconds": 1, "backoff_max_seconds": 1, "max_attempts": 50, "quarantine_after": 3}])
    yield tool, services
    services.close()
    tool.stop()


def health(database):
    return rows(database, "SELECT failures, quarantined_at IS NOT NULL, quarantine_step, probe_at "
                          "FROM outbound_health WHERE target = 'gh-scim'")


def test_a_failing_target_is_quarantined_probed_and_released(down_tool, database):
    tool, services = down_tool
    add_grant(database, add_person(database, "ivy"), "vpn")
    with psycopg.connect(database.owner_url) as conn:  # ivy's github restored, then revoked: two rows in order
        conn.execute("INSERT INTO grants (person_id, resource_id, state, reason, granted_by) SELECT p.id, r.id, "
                     "'revoked', 'x', 'test' FROM people p, resources r WHERE r.key = 'github'")
        conn.execute("UPDATE grants SET state = 'active'")
    with psycopg.connect(database.app_url) as conn:
        grant_store.revoke(conn, "ivy", "github", reason="leaver")
    t = datetime.now(UTC)
    for minute in range(3):
        assert deliver_due(services, now=t + timedelta(minutes=minute))["retry"] == 1
    (failures, quarantined, step, probe_at), = health(database)
    assert (failures, quarantined, step) == (3, True, 0)
    assert probe_at == t + timedelta(minutes=2, hours=6)
    assert rows(database, "SELECT kind, to_addrs FROM notifications") == [("outbox_quarantined", ["ada@example.com"])]
    assert rows(database, "SELECT detail->>'target', detail->>'failures', detail->'notified' FROM journal "
                          "WHERE kind = 'outbound' AND outcome = 'quarantined'") == [
        ("gh-scim", "3", ["ada@example.com"])]

    assert deliver_due(services, now=t + timedelta(hours=5))["skipped"] == 1  # due by backoff, held by quarantine
    assert rows(database, "SELECT max(attempts) FROM outbox") == [(3,)]
    assert deliver_due(services, now=probe_at)["retry"] == 1  # the probe: one attempt, failed
    (failures, quarantined, step, second), = health(database)
    assert (failures, quarantined, step, second) == (4, True, 1, probe_at + timedelta(hours=12))

    tool.start()
    remote = tool.add_user("ivy")
    assert deliver_due(services, now=second)["confirmed"] == 1  # the target answers: released
    assert deliver_due(services, now=second)["confirmed"] == 1  # and the revocation behind the restore goes out
    assert tool.user(remote)["active"] is False
    assert rows(database, "SELECT failures, quarantined_at, probe_at FROM outbound_health") == [(0, None, None)]
    assert rows(database, "SELECT outcome FROM journal WHERE kind = 'outbound' AND detail->>'outbox' IS NULL "
                          "ORDER BY seq") == [("quarantined",), ("quarantined",), ("released",)]
    assert [k for k, in rows(database, "SELECT kind FROM notifications ORDER BY created_at")] == [
        "outbox_quarantined", "outbox_released"]
