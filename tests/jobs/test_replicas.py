"""Several replicas for real: two `gatehouse serve` and two `gatehouse worker` processes on one PostgreSQL.

SCIM creates and patches people through both web processes in turn, and each reads what the other wrote; checks
go through both. A review campaign whose deadline has passed and two people whose training lapsed wait for the
workers, which start together: the deadline and the sweep revoke (each once, whichever worker gets there), and
the revocations reach a real webhook receiver once each. Every scheduled job ran once per due time, and the
journal both replicas wrote is one chain that verifies.
"""

import contextlib
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import requests

from service.bootstrap import load_policy
from service.reviews import campaigns
from tests.support.cli import db_env, gatehouse, serving_several, worker_process
from tests.support.factories import add_completion, add_grant, now, rows
from tests.support.outbox import SECRET, webhook_receiver
from tests.support.policy import course, policy_toml, resource
from tests.support.scim import USER, make_token, patch_op

PEOPLE = [f"p{n}@example.com" for n in range(6)]
LAPSED = PEOPLE[4:]  # trained 400 days ago: the sweep suspends their VPN
REVIEWED = PEOPLE[:3]  # their github grants are in the campaign nobody decided: the deadline revokes them


def write_policy(path: Path, hook: str) -> Path:
    targets = [{"key": f"hook-{r}", "type": "webhook", "resource": r, "url": f"{hook}/{r}",
                "secret_env": "HOOK_SECRET"} for r in ("vpn", "github")]
    path.write_text(policy_toml(resources=[resource("vpn", kind="vpn"), resource("github")],
                                training=[course("security-awareness", validity_days=365, gates=("vpn",))],
                                reviews={"cadence_days": 90, "due_days": 14, "guard_share": 1.0}, targets=targets))
    return path


def scim(base: str, token: str, method: str, path: str, body=None) -> requests.Response:
    return requests.request(method, f"{base}/scim/v2/{path}", json=body, timeout=10, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})


def check(base: str, token: str, user: str, resource: str) -> dict:
    r = requests.post(f"{base}/api/v1/access/check", json={"user": user, "resource": resource}, timeout=10,
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(what, procs, logs, seconds: float):
    deadline = time.monotonic() + seconds
    while not what():
        for p, log in zip(procs, logs, strict=True):
            assert p.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "\n".join(log.read_text()[-2000:] for log in logs)
        time.sleep(0.2)


@pytest.mark.slow
def test_two_web_and_two_worker_processes_share_one_database(database, tmp_path):
    scim_token, gw = make_token(database, "okta"), make_token(database, "vpn-gw", scopes=("access:check",))
    with contextlib.ExitStack() as stack:
        hook, url = stack.enter_context(webhook_receiver())
        policy_file = write_policy(tmp_path / "policy.toml", url)
        webs = stack.enter_context(serving_several(database, tmp_path, 2, GATEHOUSE_POLICY_FILE=str(policy_file)))

        # SCIM through both web processes in turn; each sees what the other wrote.
        ids = {}
        for n, user in enumerate(PEOPLE):
            r = scim(webs[n % 2], scim_token, "POST", "Users", {"schemas": [USER], "userName": user, "active": True})
            assert r.status_code == 201, r.text
            ids[user] = r.json()["id"]
        for n, user in enumerate(PEOPLE):
            r = scim(webs[(n + 1) % 2], scim_token, "PATCH", f"Users/{ids[user]}",
                     patch_op({"op": "replace", "path": "title", "value": f"Engineer {n}"}))
            assert r.status_code == 200 and r.json()["title"] == f"Engineer {n}", r.text
        for base in webs:
            listed = scim(base, scim_token, "GET", "Users?count=100").json()
            assert sorted((u["userName"], u["title"]) for u in listed["Resources"]) == [
                (u, f"Engineer {n}") for n, u in enumerate(PEOPLE)]

        for user in PEOPLE:  # HR's grants and completions, as the database holds them
            add_grant(database, ids[user], "vpn")
            add_completion(database, ids[user], now() - timedelta(days=400 if user in LAPSED else 30))
        for user in REVIEWED:
            add_grant(database, ids[user], "github")
        decided = [check(webs[n % 2], gw, user, "vpn") for n, user in enumerate(PEOPLE)]
        assert [d["allow"] for d in decided] == [user not in LAPSED for user in PEOPLE]  # a lapse denies at once
        with psycopg.connect(database.app_url) as conn, conn.transaction():  # due a day ago, nobody decided
            started = campaigns.start(conn, load_policy(policy_file), resources=["github"], due_days=1,
                                      now=now() - timedelta(days=2), origin="admin", actor="admin:test",
                                      base_url="http://localhost:8080")
        assert started.items == len(REVIEWED)

        logs = [tmp_path / f"worker-{n}.log" for n in (1, 2)]
        workers = [worker_process(database, log, GATEHOUSE_POLICY_FILE=str(policy_file), HOOK_SECRET=SECRET.decode())
                   for log in logs]
        try:
            revoked = len(REVIEWED) + len(LAPSED)
            wait_for(lambda: rows(database, "SELECT count(*) FROM outbox WHERE op = 'disable' AND state = "
                                            "'confirmed'") == [(revoked,)], workers, logs, 60)
            for p in workers:
                assert p.poll() is None
        finally:
            for p in workers:
                p.send_signal(signal.SIGTERM)
            for p in workers:
                p.wait(30)
        assert [p.returncode for p in workers] == [0, 0], [log.read_text()[-2000:] for log in logs]

        assert [check(webs[n % 2], gw, user, "github")["allow"] for n, user in enumerate(REVIEWED)] == [False] * 3

    # Each revocation: once in the grants, once in the journal, once downstream.
    assert sorted(rows(database, "SELECT p.user_name, r.key, g.state, g.reason FROM grants g JOIN people p ON "
                                 "p.id = g.person_id JOIN resources r ON r.id = g.resource_id WHERE g.state <> "
                                 "'active'")) == sorted(
        [(u, "github", "revoked", f"review_missed:{started.key}") for u in REVIEWED]
        + [(u, "vpn", "suspended", "training_lapsed:security-awareness") for u in LAPSED])
    assert Counter(rows(database, "SELECT outcome FROM journal WHERE kind = 'revoke'")) == {
        ("review_missed",): len(REVIEWED)}
    assert sorted(rows(database, "SELECT subject::text FROM journal WHERE kind = 'suspend' AND outcome = "
                                 "'training_lapsed'")) == sorted((ids[u],) for u in LAPSED)
    assert rows(database, "SELECT count(*) FROM journal WHERE kind = 'review' AND outcome = 'closed'") == [(1,)]
    assert hook.refused == []  # no replay of an event already delivered
    delivered = Counter((e["type"], e["user"], e["resource"]) for e in hook.accepted)
    assert {k: n for k, n in delivered.items() if k[0] == "access.disable"} == {
        **{("access.disable", u, "github"): 1 for u in REVIEWED}, **{("access.disable", u, "vpn"): 1 for u in LAPSED}}
    assert set(delivered.values()) == {1}  # the grants' enables too: each once
    assert rows(database, "SELECT count(*) FROM outbox WHERE state <> 'confirmed'") == [(0,)]

    # Every scheduled job ran once per due time, whichever worker ran it; none failed or was left running.
    runs = rows(database, "SELECT job, due_at, outcome, runner FROM job_runs WHERE trigger = 'schedule'")
    assert {outcome for _, _, outcome, _ in runs} == {"ok"}, runs
    assert [k for k, n in Counter((job, due) for job, due, _, _ in runs).items() if n > 1] == []
    assert {"outbox", "training_sweep", "reviews_deadline"} <= {job for job, _, _, _ in runs}
    journaled = rows(database, "SELECT detail->>'job', detail->>'due', detail->>'run' FROM journal "
                               "WHERE kind = 'job' AND detail->>'trigger' = 'schedule'")
    assert sorted((job, run) for job, _, run in journaled) == sorted(
        rows(database, "SELECT job, id::text FROM job_runs WHERE trigger = 'schedule'"))
    assert len({(job, due) for job, due, _ in journaled}) == len(journaled)

    # The journal both web processes and both workers appended to is one chain.
    verified = gatehouse("journal", "verify", env=db_env(database))
    assert verified.returncode == 0 and verified.stdout.startswith("OK "), verified.stdout + verified.stderr
    count, = rows(database, "SELECT count(*) FROM journal")[0]
    assert verified.stdout.split()[1] == str(count)
