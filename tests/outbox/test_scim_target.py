"""Revocations and restorations reach a real downstream SCIM server (scim2-server), verified by a re-read."""

import dataclasses
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from service.access import store as grant_store
from service.admins import store as admins
from service.outbox import store
from service.outbox.delivery import deliver_due
from tests.support.factories import add_grant, add_person, rows
from tests.support.net import free_port
from tests.support.outbox import change, outbox_services
from tests.support.scimtool import TOKEN, ScimTool


def scim_target(url, **more):
    return {"key": "gh-scim", "type": "scim", "resource": "github", "url": url, "token_env": "GH_SCIM_TOKEN",
            "backoff_seconds": 10, **more}


def states(database):
    return rows(database, "SELECT op, state, attempts FROM outbox ORDER BY id")


def test_a_revocation_deactivates_the_remote_user_and_a_restoration_reactivates_it(tool, database, make_services):
    services = make_services([scim_target(tool.url)])
    remote = tool.add_user("alice")
    alice = add_person(database, "alice")
    add_grant(database, alice, "github")
    assert deliver_due(services)["confirmed"] == 1  # the grant: alice is active already, nothing to change
    change(database, grant_store.revoke, "alice", "github", reason="leaver")
    assert deliver_due(services) == {"confirmed": 1, "retry": 0, "dead": 0, "skipped": 0, "escalated": 0}
    assert tool.user(remote)["active"] is False
    assert states(database) == [("enable", "confirmed", 1), ("disable", "confirmed", 1)]
    assert rows(database, "SELECT remote_id FROM outbound_accounts") == [(remote,)]
    journal = rows(database, "SELECT outcome, subject, detail->>'op', detail->'answer'->>'remote' FROM journal "
                             "WHERE kind = 'outbound' ORDER BY seq")
    assert journal[2:] == [("sent", alice, "disable", "patched"), ("confirmed", alice, "disable", None)]
    change(database, grant_store.grant, "alice", "github", by="admin:ada")
    deliver_due(services)
    assert tool.user(remote)["active"] is True
    assert states(database)[-1] == ("enable", "confirmed", 1)
    assert deliver_due(services)["confirmed"] == 0  # nothing is delivered twice


def test_a_target_down_during_a_revocation_gets_it_once_when_back(database, make_services, monkeypatch):
    monkeypatch.setenv("GH_SCIM_TOKEN", TOKEN)
    tool = ScimTool()  # not started: the port refuses
    services = make_services([scim_target(tool.url)])
    bob = add_person(database, "bob")
    add_grant(database, bob, "github", state="active")
    change(database, grant_store.revoke, "bob", "github", reason="review")
    assert deliver_due(services)["retry"] == 1
    assert states(database) == [("enable", "intent", 1), ("disable", "intent", 0)]  # the disable waits its turn
    (wait,), = rows(database, "SELECT next_attempt_at - now() FROM outbox WHERE op = 'enable'")
    assert timedelta(seconds=4) < wait <= timedelta(seconds=10)  # backoff 10 s with jitter: between 5 and 10
    assert deliver_due(services)["confirmed"] == 0  # not due yet
    tool.start()
    try:
        remote = tool.add_user("bob")
        later = datetime.now(UTC) + timedelta(minutes=5)
        deliver_due(services, now=later)
        deliver_due(services, now=later)
        assert tool.user(remote)["active"] is False
        assert states(database) == [("enable", "confirmed", 2), ("disable", "confirmed", 1)]
        assert deliver_due(services, now=later + timedelta(hours=1))["confirmed"] == 0
    finally:
        tool.stop()
    assert rows(database, "SELECT count(*) FROM journal WHERE kind = 'outbound' AND outcome = 'confirmed' "
                          "AND detail->>'op' = 'disable'") == [(1,)]


class Liar(BaseHTTPRequestHandler):
    """A tool that answers like SCIM but never deactivates (or, with status set, refuses with it)."""

    status = 200
    retry_after = None

    def _send(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/scim+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        user = {"id": "u1", "userName": "carol", "active": True}
        self._send(200, {"totalResults": 1, "Resources": [user]} if "filter" in self.path else user)

    def do_PATCH(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.status != 200:
            self._send(self.status, {"status": str(self.status)},
                       [("Retry-After", self.retry_after)] if self.retry_after else [])
        else:
            self._send(200, {"id": "u1", "userName": "carol", "active": True})

    def log_message(self, *args):
        pass


@pytest.fixture
def liar():
    servers = []

    def start(**attrs):
        handler = type("Handler", (Liar,), attrs)
        server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _revoked_carol(database):
    carol = add_person(database, "carol")
    add_grant(database, carol, "vpn")  # not github: no enable row ahead of the revocation
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO grants (person_id, resource_id, state, reason, granted_by) SELECT %s, id, "
                     "'revoked', 'x', 'test' FROM resources WHERE key = 'github'", (carol,))
        conn.execute("UPDATE grants SET state = 'active' WHERE person_id = %s", (carol,))
    change(database, grant_store.revoke, "carol", "github", reason="leaver")
    (row_id,), = rows(database, "SELECT id FROM outbox WHERE op = 'disable'")
    return row_id


def test_a_200_that_leaves_the_user_active_is_caught_by_the_re_read(liar, database, make_services, monkeypatch):
    monkeypatch.setenv("GH_SCIM_TOKEN", "t")
    services = make_services([scim_target(liar(), max_attempts=2)])
    row_id = _revoked_carol(database)
    deliver_due(services)  # the enable of the restore above is first in line
    assert rows(database, "SELECT state FROM outbox WHERE id = %s", (row_id,)) == [("intent",)]
    later = datetime.now(UTC) + timedelta(hours=2)
    deliver_due(services, now=later)
    assert rows(database, "SELECT state, attempts, last_error FROM outbox WHERE id = %s", (row_id,)) == [
        ("sent", 1, "the target answered, but a re-read still shows the access as it was")]
    deliver_due(services, now=later + timedelta(hours=2))
    assert rows(database, "SELECT state, attempts FROM outbox WHERE id = %s", (row_id,)) == [("dead", 2)]
    assert rows(database, "SELECT outcome FROM journal WHERE kind = 'outbound' AND detail->>'outbox' = %s "
                          "ORDER BY seq", (str(row_id),)) == [
        ("sent",), ("failed",), ("escalated",), ("sent",), ("dead",)]
    # sent 2 h before "now" and never confirmed (the default confirm_within_seconds is an hour): escalated once


def test_429_waits_as_retry_after_says(liar, database, make_services, monkeypatch):
    monkeypatch.setenv("GH_SCIM_TOKEN", "t")
    services = make_services([scim_target(liar(status=429, retry_after="600"))])
    row_id = _revoked_carol(database)
    later = datetime.now(UTC) + timedelta(hours=2)
    deliver_due(services, now=later)
    deliver_due(services, now=later)
    (state, attempts, wait, error), = rows(
        database, "SELECT state, attempts, next_attempt_at - now(), last_error FROM outbox WHERE id = %s", (row_id,))
    assert (state, attempts, error) == ("intent", 1, "PATCH /Users/u1: HTTP 429")
    assert timedelta(seconds=590) < wait <= timedelta(seconds=600)


def test_a_row_sent_but_never_confirmed_is_escalated_once_by_mail_and_journal(liar, settings, database,
                                                                              monkeypatch):
    monkeypatch.setenv("GH_SCIM_TOKEN", "t")
    with psycopg.connect(database.app_url) as conn:
        admins.create_admin(conn, "ada@example.com", display_name=None, created_by="test")
    services = outbox_services(dataclasses.replace(settings, smtp_host="127.0.0.1"), database,
                               [scim_target(liar(), confirm_within_seconds=60, max_attempts=50)])
    try:
        row_id = _revoked_carol(database)
        start = datetime.now(UTC)
        deliver_due(services, now=start)
        assert deliver_due(services, now=start)["escalated"] == 0  # sent just now: not late yet
        assert rows(database, "SELECT state FROM outbox WHERE id = %s", (row_id,)) == [("sent",)]
        assert deliver_due(services, now=start + timedelta(minutes=2))["escalated"] == 1
        assert deliver_due(services, now=start + timedelta(hours=5))["escalated"] == 0  # once, though still late
    finally:
        services.close()
    assert rows(database, "SELECT detail->'notified' FROM journal WHERE outcome = 'escalated' "
                          "AND detail->>'outbox' = %s", (str(row_id),)) == [(["ada@example.com"],)]
    (kind, to, subject, body), = rows(database, "SELECT kind, to_addrs, subject, body FROM notifications")
    assert (kind, to, subject) == ("outbox_unconfirmed", ["ada@example.com"], "Gatehouse: 1 change(s) at gh-scim "
                                                                              "not confirmed")
    assert f"row {row_id}: disable carol" in body
    with psycopg.connect(database.app_url) as conn:
        (page,) = [t for t in store.summary(conn) if t.key == "gh-scim"]
    assert (page.unconfirmed, page.escalated) == (1, 1)
