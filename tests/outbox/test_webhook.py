"""A webhook event reaches a local receiver that verifies it by the documented recipe; a replay is refused."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
import requests

from connectors.webhook import REPLAY_WINDOW, verify_signature
from service.access import store as grant_store
from service.outbox.delivery import deliver_due
from tests.support.factories import add_grant, add_person, rows
from tests.support.net import free_port

SECRET = b"hook-secret"


class Receiver(BaseHTTPRequestHandler):
    """The recipe of connectors/webhook.py: signature, replay window, and ids seen before."""

    seen: dict = {}
    accepted: list = []
    refused: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp, sig = self.headers.get("Gatehouse-Timestamp", ""), self.headers.get("Gatehouse-Signature", "")
        event = json.loads(body)
        now = time.time()
        for old in [k for k, at in self.seen.items() if now - at > REPLAY_WINDOW]:
            del self.seen[old]
        ok = verify_signature(SECRET, stamp, body, sig) and event["id"] not in self.seen
        (self.accepted if ok else self.refused).append(event)
        if ok:
            self.seen[event["id"]] = now
        self.send_response(204 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()
        type(self).last = (stamp, sig, body)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    handler = type("R", (Receiver,), {"seen": {}, "accepted": [], "refused": []})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


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
