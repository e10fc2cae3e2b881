"""The console's Outbound page: per-target health and dead letters; retry and discard bound to a WebAuthn assertion."""

import dataclasses

import psycopg
import pytest

from service.access import store as grant_store
from service.app import create_app
from service.outbox.delivery import deliver_due
from tests.support.admin import ORIGIN, csrf_of, enroll, step_up
from tests.support.factories import add_grant, add_person, rows
from tests.support.net import free_port
from tests.support.outbox import outbox_services
from tests.support.softauthn import SoftAuthenticator


@pytest.fixture
def console(settings, database, monkeypatch):
    """An admin signed in to an app whose policy has a SCIM target that refuses (one attempt, then dead)."""
    monkeypatch.setenv("GH_SCIM_TOKEN", "t")
    services = outbox_services(dataclasses.replace(settings, base_url=ORIGIN), database, [{
        "key": "gh-scim", "type": "scim", "resource": "github", "max_attempts": 1,
        "url": f"http://127.0.0.1:{free_port()}", "token_env": "GH_SCIM_TOKEN"}])
    web = create_app(services=services).test_client()
    key = SoftAuthenticator()
    assert enroll(web, database, key).status_code == 200
    yield web, key, services
    services.close()


def dead_letters(database, services):
    """Two dead rows of one person and target: hal's grant, then its revocation."""
    add_grant(database, add_person(database, "hal"), "github")
    assert deliver_due(services)["dead"] == 1
    with psycopg.connect(database.app_url) as conn:
        grant_store.revoke(conn, "hal", "github", reason="leaver")
    assert deliver_due(services)["dead"] == 1
    return [r for r, in rows(database, "SELECT id FROM outbox ORDER BY id")]


def snapshot(database):
    return (rows(database, "SELECT id, state, attempts FROM outbox ORDER BY id"),
            rows(database, "SELECT count(*) FROM journal"))


def test_the_page_shows_each_target_and_its_dead_letters(console, database):
    web, _key, services = console
    first, second = dead_letters(database, services)
    page = web.get("/admin/outbox")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-target="gh-scim"' in text and f'data-row="{first}"' in text and f'data-row="{second}"' in text
    assert "Connection refused" in text
    assert page.headers["X-Frame-Options"] == "DENY"
    anonymous = create_app(services=services).test_client().get("/admin/outbox")
    assert anonymous.status_code == 401


def test_retry_and_discard_are_webauthn_bound_and_journaled(console, database):
    web, key, services = console
    first, second = dead_letters(database, services)
    r, _, _ = step_up(web, key, "outbox.retry", {"row": str(second)})
    assert r.status_code == 200 and r.json == {"ok": True, "row": second, "state": "intent"}
    r, _, _ = step_up(web, key, "outbox.discard", {"row": str(first)})
    assert r.status_code == 200
    assert rows(database, "SELECT id, state, attempts, finished_by FROM outbox ORDER BY id") == [
        (first, "discarded", 1, "admin:ada@example.com"), (second, "intent", 0, None)]
    assert rows(database, "SELECT outcome, actor, detail->>'via' FROM journal WHERE kind = 'outbound' "
                          "AND outcome IN ('retry', 'discarded') ORDER BY seq") == [
        ("retry", "admin:ada@example.com", "console"), ("discarded", "admin:ada@example.com", "console")]
    assert rows(database, "SELECT detail->>'action', (detail->>'outbox')::bigint, detail->>'target' FROM journal "
                          "WHERE kind = 'admin' AND detail->>'action' LIKE 'outbox.%%' ORDER BY seq") == [
        ("outbox.retry", second, "gh-scim"), ("outbox.discard", first, "gh-scim")]


@pytest.mark.parametrize("attack", ["other_row", "other_action", "no_assertion"])
def test_an_assertion_for_something_else_changes_nothing(console, database, attack):
    web, key, services = console
    first, second = dead_letters(database, services)
    before = snapshot(database)
    if attack == "other_row":
        r, _, _ = step_up(web, key, "outbox.discard", {"row": str(second)}, use_params={"row": str(first)})
        assert r.status_code == 403 and r.json["code"] == "webauthn_wrong_body"
    elif attack == "other_action":
        r, _, _ = step_up(web, key, "outbox.discard", {"row": str(second)}, use_action="outbox.retry")
        assert r.status_code == 403 and r.json["code"] == "webauthn_wrong_action"
    else:
        r = web.post("/admin/api/outbox/discard", json={"params": {"row": str(first)}},
                     headers={"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)})
        assert r.status_code == 403 and r.json["code"] == "webauthn_missing"
    outbox, _ = snapshot(database)
    assert outbox == before[0]
    assert rows(database, "SELECT count(*) FROM journal WHERE kind = 'outbound' AND outcome IN ('retry', "
                          "'discarded') AND detail->>'outbox' = %s", (str(first),)) == [(0,)]


def test_bad_or_refused_requests_get_a_problem_and_change_nothing(console, database):
    web, key, services = console
    first, second = dead_letters(database, services)
    before = rows(database, "SELECT id, state, attempts FROM outbox ORDER BY id")
    r, _, _ = step_up(web, key, "outbox.retry", {"row": str(first)})
    assert r.status_code == 409 and f"superseded by row {second}" in r.json["detail"]
    r, _, _ = step_up(web, key, "outbox.retry", {"row": "x; drop"})
    assert r.status_code == 400 and "params.row" in r.json["detail"]
    r, _, _ = step_up(web, key, "outbox.discard", {"row": "99999"})
    assert r.status_code == 404
    assert rows(database, "SELECT id, state, attempts FROM outbox ORDER BY id") == before
    assert rows(database, "SELECT count(*) FROM journal WHERE kind = 'admin' AND detail->>'action' LIKE 'outbox.%%' "
                          "AND outcome = 'ok'") == [(0,)]
