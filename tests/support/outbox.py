"""Outbox test helpers: the service's parts on a policy with these targets, a grant change in one transaction, and a
webhook receiver that verifies what it gets by the documented recipe."""

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

from connectors.webhook import REPLAY_WINDOW, verify_signature
from policies import parse_policy
from service import bootstrap
from service.access.resources import sync_resources
from tests.support.net import free_port
from tests.support.policy import policy_toml, resource

SECRET = b"hook-secret"


def outbox_services(settings, database, targets, **policy):
    """The services with a policy holding these targets, synced to the database as `serve` does at start."""
    text = policy_toml(resources=[resource("vpn", kind="vpn"), resource("github")], targets=targets, **policy)
    policy = parse_policy(text.encode(), source="test.toml")
    with psycopg.connect(database.app_url) as conn:
        sync_resources(conn, policy)
    return bootstrap.build(settings, database, policy=policy)

def change(database, fn, *args, **kwargs):
    """Run a store function on the application role's connection, committed."""
    with psycopg.connect(database.app_url) as conn:
        fn(conn, *args, **kwargs)


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


@contextlib.contextmanager
def webhook_receiver():
    """A Receiver of its own (fresh lists) on 127.0.0.1: (the handler class, whose lists fill, and its URL)."""
    handler = type("R", (Receiver,), {"seen": {}, "accepted": [], "refused": []})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_port}/hook"
    finally:
        server.shutdown()
        server.server_close()
