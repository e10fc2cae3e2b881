"""The worker SIGKILLed mid-delivery: after a restart the revocation is delivered, and not twice.

A real `gatehouse worker` process delivers to a real SCIM tool (scim2-server) through a relay that counts what
reaches the tool and, once, holds the answer to one request after the tool has acted on it; the test kills the
worker there: right after the PATCH took effect but before the worker recorded it (the row is still `intent`),
or during the confirming re-read (the row is `sent`).
"""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from service.access import store as grant_store
from tests.support.cli import db_env
from tests.support.factories import add_grant, add_person, rows
from tests.support.outbox import outbox_services
from tests.support.policy import policy_toml, resource
from tests.support.scimtool import TOKEN, ScimTool


class Relay(ThreadingHTTPServer):
    """Forwards to the tool; records each request; holds the answer to the first one `hold` matches."""

    daemon_threads = True

    def __init__(self, tool_url: str, hold):
        super().__init__(("127.0.0.1", 0), RelayHandler)
        self.tool_url, self.hold = tool_url, hold
        self.seen: list[str] = []
        self.holding, self.release = threading.Event(), threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class RelayHandler(BaseHTTPRequestHandler):
    def _relay(self):
        server: Relay = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type", "accept")}
        request = urllib.request.Request(server.tool_url + self.path, data=body, headers=headers,
                                         method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, data, kind = answer.status, answer.read(), answer.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            status, data, kind = e.code, e.read(), e.headers.get("Content-Type")
        server.seen.append(f"{self.command} {self.path.split('?')[0]}")
        if not server.holding.is_set() and server.hold(server.seen):
            server.holding.set()  # the tool has acted; the worker waits for an answer that never comes
            server.release.wait(60)
            return
        self.send_response(status)
        self.send_header("Content-Type", kind or "application/scim+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_POST = _relay

    def log_message(self, *args):
        pass


def after_patch(seen):
    return seen[-1].startswith("PATCH")


def reread_after_patch(seen):
    return seen[-1].startswith("GET") and any(s.startswith("PATCH") for s in seen)


def worker(database, policy_file: Path, log) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(db_env(database), GATEHOUSE_POLICY_FILE=str(policy_file), GATEHOUSE_DATA_DIR=str(Path(log.name).parent),
               GH_SCIM_TOKEN=TOKEN)
    return subprocess.Popen([str(Path(sys.executable).with_name("gatehouse")), "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def wait_for(check, proc, log, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None, Path(log.name).read_text()
        assert time.monotonic() < deadline, Path(log.name).read_text()
        time.sleep(0.1)


@pytest.mark.slow
# Killed waiting for the change's answer, or for the re-read's: either way nothing was committed (sent and
# confirmed commit together), the row is as it was, and the next worker finds kim inactive already.
@pytest.mark.parametrize("hold", [after_patch, reread_after_patch])
def test_a_worker_killed_mid_delivery_delivers_after_restart_once(settings, database, tmp_path, monkeypatch,
                                                                  hold):
    monkeypatch.setenv("GH_SCIM_TOKEN", TOKEN)
    tool = ScimTool().start()
    relay = Relay(tool.url, hold)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    target = {"key": "gh-scim", "type": "scim", "resource": "github", "url": relay.url, "token_env": "GH_SCIM_TOKEN"}
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(policy_toml(resources=[resource("vpn", kind="vpn"), resource("github")],
                                       targets=[target]))
    log = (tmp_path / "worker.log").open("a")
    try:
        outbox_services(settings, database, []).close()  # the resources first: kim's grant queues nothing
        remote = tool.add_user("kim")
        add_grant(database, add_person(database, "kim"), "github")
        outbox_services(settings, database, [target]).close()
        with psycopg.connect(database.app_url) as conn:
            grant_store.revoke(conn, "kim", "github", reason="leaver")
        (row_id,), = rows(database, "SELECT id FROM outbox")

        first = worker(database, policy_file, log)
        try:
            wait_for(relay.holding.is_set, first, log)
            first.kill()  # SIGKILL: no handler runs, no transaction commits
            first.wait(10)
        finally:
            relay.release.set()
        assert first.returncode == -signal.SIGKILL
        assert tool.user(remote)["active"] is False  # the tool acted before the worker died
        assert rows(database, "SELECT state, attempts FROM outbox") == [("intent", 0)]

        second = worker(database, policy_file, log)
        try:
            wait_for(lambda: rows(database, "SELECT state FROM outbox") == [("confirmed",)], second, log)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        relay.shutdown()
        relay.server_close()
        tool.stop()
        log.close()
    assert tool_patches(relay) == 1  # the effect is not doubled: the restart found kim inactive already
    assert rows(database, "SELECT outcome, detail->'answer'->>'remote' FROM journal WHERE kind = 'outbound' "
                          "AND detail->>'outbox' = %s ORDER BY seq", (str(row_id),)) == [
        ("sent", "already"), ("confirmed", None)]
    assert rows(database, "SELECT outcome, error FROM job_runs WHERE job = 'outbox' ORDER BY started_at")[:2] == [
        ("failed", "interrupted: the runner stopped"), ("ok", None)]


def tool_patches(relay: Relay) -> int:
    return sum(1 for s in relay.seen if s.startswith("PATCH"))
