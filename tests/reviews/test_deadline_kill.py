"""A real `gatehouse worker` SIGKILLed in the middle of the review deadline job, and started again.

Two campaigns are past due. The job closes the first (its revocations committed with their journal and outbox
rows) and then waits for the second, which the test holds locked; the worker is killed there. The next worker
marks the run interrupted, finishes the job: the second campaign revoked, the first not again; every revocation
once in the grants, the journal and the outbox, and delivered once to a webhook receiver.
"""

import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from service.bootstrap import load_policy
from service.reviews import campaigns
from tests.support.cli import worker_process
from tests.support.factories import add_grant, add_person, now, rows
from tests.support.outbox import SECRET, outbox_services, webhook_receiver
from tests.support.policy import policy_toml, resource

FIRST, SECOND = ("ann", "ben"), ("cat", "dan")


def worker(database, policy_file: Path, log_path: Path) -> subprocess.Popen:
    return worker_process(database, log_path, GATEHOUSE_POLICY_FILE=str(policy_file), HOOK_SECRET=SECRET.decode())


def wait_for(check, proc, log_path: Path, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.1)


def start_campaign(database, policy, people, days_late: int) -> campaigns.Started:
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        return campaigns.start(conn, policy, resources=["github"], due_days=1, now=now() - timedelta(days=days_late),
                               origin="admin", actor="admin:test", base_url="http://localhost:8080", people=people)


@pytest.mark.slow
def test_a_worker_killed_mid_deadline_job_finishes_after_restart_revoking_each_grant_once(
        settings, database, tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET.decode())
    with webhook_receiver() as (hook, url):
        target = {"key": "hook-github", "type": "webhook", "resource": "github", "url": url,
                  "secret_env": "HOOK_SECRET"}
        policy_file = tmp_path / "policy.toml"
        policy_file.write_text(policy_toml(resources=[resource("vpn", kind="vpn"), resource("github")],
                                           reviews={"cadence_days": 90, "due_days": 14, "guard_share": 1.0},
                                           targets=[target]))
        outbox_services(settings, database, []).close()  # the resources first: these grants queue no enable
        ids = {u: add_person(database, u) for u in FIRST + SECOND}
        for u in ids:
            add_grant(database, ids[u], "github")
        outbox_services(settings, database, [target]).close()
        policy = load_policy(policy_file)
        first = start_campaign(database, policy, [ids[u] for u in FIRST], days_late=3)  # due first
        second = start_campaign(database, policy, [ids[u] for u in SECOND], days_late=2)

        log_path = tmp_path / "worker.log"
        with psycopg.connect(database.owner_url) as holder:  # the second campaign, locked: the job waits there
            holder.execute("SELECT 1 FROM review_campaigns WHERE id = %s FOR UPDATE", (second.id,))
            killed = worker(database, policy_file, log_path)
            try:
                wait_for(lambda: rows(database, "SELECT state FROM review_campaigns WHERE id = %s",
                                      (first.id,)) == [("closed",)], killed, log_path)
                wait_for(lambda: rows(database, "SELECT count(*) FROM job_runs WHERE job = 'outbox' AND outcome "
                                                "<> 'running'") >= [(1,)], killed, log_path)  # none in flight
                assert rows(database, "SELECT outcome FROM job_runs WHERE job = 'reviews_deadline'") == [
                    ("running",)]
                killed.kill()  # SIGKILL, mid-job: no handler runs, the second campaign's transaction never began
                killed.wait(10)
            finally:
                holder.rollback()
        assert killed.returncode == -signal.SIGKILL
        assert rows(database, "SELECT state FROM review_campaigns ORDER BY due_at") == [("closed",), ("open",)]
        # The dead worker's session (and its job lock) ends once its backend notices; then a new worker starts.
        deadline = time.monotonic() + 30
        while rows(database, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                             "(SELECT oid FROM pg_database WHERE datname = current_database())") != [(0,)]:
            assert time.monotonic() < deadline
            time.sleep(0.1)

        restarted = worker(database, policy_file, log_path)
        try:
            wait_for(lambda: rows(database, "SELECT count(*) FROM outbox WHERE state = 'confirmed'") == [(4,)],
                     restarted, log_path)
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(30)
        assert restarted.returncode == 0, log_path.read_text()[-3000:]

    assert rows(database, "SELECT state FROM review_campaigns ORDER BY due_at") == [("closed",), ("closed",)]
    assert sorted(rows(database, "SELECT p.user_name, g.state, g.reason FROM grants g JOIN people p ON "
                                 "p.id = g.person_id")) == sorted(
        [(u, "revoked", f"review_missed:{first.key}") for u in FIRST]
        + [(u, "revoked", f"review_missed:{second.key}") for u in SECOND])
    revoked = rows(database, "SELECT subject::text, detail->>'campaign' FROM journal WHERE kind = 'revoke' "
                             "AND outcome = 'review_missed'")
    assert sorted(revoked) == sorted([(ids[u], first.key) for u in FIRST] + [(ids[u], second.key) for u in SECOND])
    assert sorted(rows(database, "SELECT detail->>'campaign' FROM journal WHERE kind = 'review' AND outcome = "
                                 "'closed'")) == sorted([(first.key,), (second.key,)])
    assert sorted(rows(database, "SELECT user_name, op, cause, state FROM outbox")) == sorted(
        (u, "disable", "revoke", "confirmed") for u in FIRST + SECOND)
    assert hook.refused == [] and Counter((e["type"], e["user"]) for e in hook.accepted) == {
        ("access.disable", u): 1 for u in FIRST + SECOND}
    runs = rows(database, "SELECT outcome, error, counts FROM job_runs WHERE job = 'reviews_deadline' "
                          "ORDER BY started_at")
    assert runs[:2] == [("failed", "interrupted: the runner stopped", {}),
                        ("ok", None, {"campaigns": 1, "held": 0, "revoked": 2})]
    assert all(counts["revoked"] == 0 for _, _, counts in runs[2:])  # a later minute's run found nothing left
