"""`gatehouse outbox`: list the dead letters, retry one (journaled), discard one; bad input changes nothing."""

import psycopg

from service.access import store as grant_store
from service.outbox.delivery import deliver_due
from tests.support.cli import db_env, gatehouse
from tests.support.factories import add_grant, add_person, rows
from tests.support.net import free_port


def test_list_retry_and_discard_dead_letters(database, make_services, monkeypatch):
    monkeypatch.setenv("GH_SCIM_TOKEN", "t")
    services = make_services([{"key": "gh-scim", "type": "scim", "resource": "github", "max_attempts": 1,
                               "url": f"http://127.0.0.1:{free_port()}", "token_env": "GH_SCIM_TOKEN"}])
    add_grant(database, add_person(database, "hal"), "github")
    assert deliver_due(services)["dead"] == 1
    with psycopg.connect(database.app_url) as conn:
        grant_store.revoke(conn, "hal", "github", reason="leaver")
    assert deliver_due(services)["dead"] == 1  # dead letters do not hold up the next change
    (first, second), = [tuple(r[0] for r in rows(database, "SELECT id FROM outbox ORDER BY id"))]
    env = db_env(database)
    listed = gatehouse("outbox", "list", "--state", "dead", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "gh-scim" in listed.stdout and "hal" in listed.stdout and "disable" in listed.stdout
    refused = gatehouse("outbox", "retry", str(first), env=env)
    assert refused.returncode == 1
    assert f"superseded by row {second}" in refused.stderr and len(refused.stderr.splitlines()) == 1
    done = gatehouse("outbox", "retry", str(second), env=env)
    assert done.returncode == 0, done.stderr
    gone = gatehouse("outbox", "discard", str(first), env=env)
    assert gone.returncode == 0, gone.stderr
    assert gatehouse("outbox", "discard", str(first), env=env).returncode == 1
    assert gatehouse("outbox", "retry", "99999", env=env).returncode == 1
    assert rows(database, "SELECT id, state, attempts, finished_by LIKE 'operator:%%' FROM outbox ORDER BY id") == [
        (first, "discarded", 1, True), (second, "intent", 0, None)]
    assert rows(database, "SELECT outcome, actor LIKE 'operator:%%', detail->>'via' FROM journal "
                          "WHERE kind = 'outbound' AND outcome IN ('retry', 'discarded') ORDER BY seq") == [
        ("retry", True, "cli"), ("discarded", True, "cli")]
    targets = gatehouse("outbox", "targets", env=env)
    assert targets.returncode == 0 and "gh-scim" in targets.stdout
