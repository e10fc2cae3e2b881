"""A webhook event reaches a local receiver that verifies it by the documented recipe; a replay is refused."""

import time

import psycopg
import pytest
import requests

from connectors.webhook import REPLAY_WINDOW, verify_signature
from service.access import store as grant_store
from service.outbox.delivery import deliver_due
from tests.support.factories import add_grant, add_person, rows
from tests.support.outbox import SECRET, webhook_receiver


@pytest.fixture
def receiver():
    with webhook_receiver() as (handler, url):
        yield handler, url


def test_a_signed_event_is_accepted_once_and_a_replay_is_refused(receiver, database, make_services, monkeypatch):
    handler, url = receiver
    monkeypatch.setenv("HOOK_SECRET", SECRET.decode())
    services = make_services([{"key": "gh-hook", "type": "webhook", "resource": "github", "url": url,
                               "secret_env": "HOOK_SECRET"}])
    frank = add_person(database, "frank")
    add_grant(database, frank, "github")
    with psycopg.connect(database.app_url) as conn:
        grant_store.revoke(conn, "frank", "github", reason="leaver")
    assert deliver_due(services)["confirmed"] == 1
    deliver_due(services)
    assert [(e["type"], e["user"], e["cause"], e["reason"]) for e in handler.accepted] == [
        ("access.enable", "frank", "grant", None), ("access.disable", "frank", "revoke", "leaver")]
    keys = rows(database, "SELECT idempotency_key::text FROM outbox ORDER BY id")
    assert [e["id"] for e in handler.accepted] == [k for (k,) in keys]
    stamp, sig, body = handler.last

    replay = requests.post(url, data=body, timeout=5, headers={
        "Gatehouse-Timestamp": stamp, "Gatehouse-Signature": sig, "Content-Type": "application/json"})
    assert replay.status_code == 401  # the same id again
    forged = requests.post(url, data=body.replace(b"frank", b"frank2"), timeout=5, headers={
        "Gatehouse-Timestamp": stamp, "Gatehouse-Signature": sig})
    assert forged.status_code == 401
    assert not verify_signature(SECRET, str(int(time.time()) - REPLAY_WINDOW - 5), body, sig)  # too old
    assert len(handler.accepted) == 2


def test_a_refusing_receiver_is_retried_not_confirmed(receiver, database, make_services, monkeypatch):
    _handler, url = receiver
    monkeypatch.setenv("HOOK_SECRET", "a different secret")
    services = make_services([{"key": "gh-hook", "type": "webhook", "resource": "github", "url": url,
                               "secret_env": "HOOK_SECRET"}])
    add_grant(database, add_person(database, "gina"), "github")
    assert deliver_due(services)["retry"] == 1
    assert rows(database, "SELECT state, attempts, last_error FROM outbox") == [
        ("intent", 1, "POST webhook: HTTP 401")]
