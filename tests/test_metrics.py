"""/metrics from a real `gatehouse serve` (two gunicorn workers, multiprocess mode) and from `gatehouse worker`."""

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import db_env, gatehouse, serving
from tests.support.factories import add_person, allowed_person, lapsed_person, rows
from tests.support.net import free_port, wait_ready
from tests.support.scim import USER, make_token


def samples(text: str, name: str) -> dict[tuple, float]:
    """{sorted label items: value} of one sample name in a scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found[tuple(sorted(s.labels.items()))] = s.value
    return found


def checks_per_worker(directory: Path) -> dict[str, float]:
    """Checks counted in each worker's own file (pid: count), before any merge."""
    per_pid = {}
    for path in directory.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)], accumulate=True)
        per_pid[path.stem.split("_")[1]] = sum(s.value for m in merged if m.name == "gatehouse_checks"
                                               for s in m.samples if s.name == "gatehouse_checks_total")
    return per_pid


def test_the_counters_of_both_workers_add_up_to_what_was_sent(database, tmp_path):
    check = {"Authorization": f"Bearer {make_token(database, 'gateway', scopes=('access:check',))}",
             "Connection": "close"}
    scim = {"Authorization": f"Bearer {make_token(database, 'okta')}", "Content-Type": "application/scim+json",
            "Connection": "close"}
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale")  # a previous run's file: serve clears it
    sent: Counter = Counter()
    with serving(database, tmp_path, GATEHOUSE_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as base:
        allowed_person(database, "alice")  # once serve has synced the policy's resources (vpn)
        lapsed_person(database, "bob")
        add_person(database, "carol", active=False)

        def ask(user: str) -> tuple[int, str]:
            r = requests.get(f"{base}/api/v1/access/check", params={"user": user, "resource": "vpn"}, headers=check,
                             timeout=10)
            return r.status_code, r.json()["reasons"][0]["code"].partition(":")[0]

        with ThreadPoolExecutor(8) as pool:
            for _ in range(20):  # rounds until both workers have answered some (the kernel picks who accepts)
                for status, reason in pool.map(ask, ["alice"] * 6 + ["bob"] * 3 + ["carol", "nobody"] * 2):
                    assert status == 200
                    sent[reason] += 1
                if len([n for n in checks_per_worker(metrics_dir).values() if n]) == 2:
                    break
        per_worker = checks_per_worker(metrics_dir)
        assert len(per_worker) == 2 and all(per_worker.values()), per_worker
        for n in range(3):
            r = requests.post(f"{base}/scim/v2/Users", headers=scim, timeout=10, json={
                "schemas": [USER], "userName": f"scim{n}", "emails": [{"value": f"scim{n}@example.com"}]})
            assert r.status_code == 201, r.text
        assert requests.get(f"{base}/scim/v2/Users", headers=scim, timeout=10).status_code == 200
        assert requests.get(f"{base}/scim/v2/Users/{uuid.uuid4()}", headers=scim, timeout=10).status_code == 404
        assert requests.get(f"{base}/scim/v2/Users", timeout=10).status_code == 401
        scrape = requests.get(f"{base}/metrics", timeout=10)
    assert scrape.status_code == 200 and scrape.headers["Content-Type"].startswith("text/plain")
    text = scrape.text
    total = sum(sent.values())
    assert set(sent) == {"ok", "training_lapsed", "person_inactive", "person_unknown"}, sent
    assert samples(text, "gatehouse_checks_total") == {
        (("outcome", "allow" if reason == "ok" else "deny"), ("reason", reason)): count
        for reason, count in sent.items()}
    journaled = rows(database, "SELECT outcome, count(*) FROM journal WHERE kind = 'check' GROUP BY outcome")
    assert dict(journaled) == {"allow": sent["ok"], "deny": total - sent["ok"]}
    assert samples(text, "gatehouse_check_seconds_count") == {(): total}
    steps = samples(text, "gatehouse_check_step_seconds_count")
    assert steps == {(("step", s),): total for s in ("token", "facts", "decide", "journal_wait", "respond")}
    # every check row went through the group commit, and nothing else did here
    assert samples(text, "gatehouse_journal_batch_rows_sum") == {(): total}
    assert 1 <= samples(text, "gatehouse_journal_append_seconds_count")[()] <= total
    assert samples(text, "gatehouse_scim_requests_total") == {
        (("method", "POST"), ("resource_type", "Users"), ("status", "201")): 3,
        (("method", "GET"), ("resource_type", "Users"), ("status", "200")): 1,
        (("method", "GET"), ("resource_type", "Users"), ("status", "404")): 1,
        (("method", "GET"), ("resource_type", "Users"), ("status", "401")): 1}
    assert rows(database, "SELECT count(*) FROM people WHERE user_name LIKE 'scim%%'") == [(3,)]
    assert samples(text, "gatehouse_outbox_backlog") == {} and samples(text, "gatehouse_database_up") == {(): 1}


def test_serve_keeps_its_metric_files_in_a_private_directory_it_removes(database, tmp_path):
    with serving(database, tmp_path) as base:  # PROMETHEUS_MULTIPROC_DIR not set
        scrape = requests.get(f"{base}/metrics", timeout=10)
        log = (tmp_path / "serve.log").read_text()
        directory = Path(re.search(r"metrics: per-process files in (\S+?)\"", log).group(1))
        assert list(directory.glob("histogram_*.db")), "the workers do not write their metrics there"
    assert scrape.status_code == 200
    assert samples(scrape.text, "gatehouse_check_step_seconds_count")[(("step", "facts"),)] == 0
    assert not directory.exists(), "serve left its metrics directory behind"


def test_metrics_are_refused_to_an_address_off_the_allow_list(settings, database):
    from service import bootstrap
    from service.app import create_app

    services = bootstrap.build(dataclasses.replace(settings, metrics_allow=("10.0.0.0/8",)), database)
    try:
        r = create_app(services=services).test_client().get("/metrics")  # from 127.0.0.1
    finally:
        services.close()
    assert r.status_code == 403 and r.json["code"] == "forbidden" and "GATEHOUSE_METRICS_ALLOW" in r.json["detail"]
    assert "gatehouse_" not in r.text


def test_the_worker_serves_its_job_metrics(database, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(db_env(database), GATEHOUSE_DATA_DIR=str(tmp_path), PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("gatehouse")), "worker", "--metrics-port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/metrics", proc)
        deadline = time.monotonic() + 30  # the outbox job runs as the worker starts
        while not rows(database, "SELECT 1 FROM job_runs WHERE job = 'outbox' AND outcome = 'ok'"):
            assert time.monotonic() < deadline, "the outbox job did not run"
            time.sleep(0.2)
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    [(finished, seconds)] = rows(database, "SELECT extract(epoch FROM finished_at)::float8, "
                                           "extract(epoch FROM finished_at - started_at)::float8 FROM job_runs "
                                           "WHERE job = 'outbox' AND outcome = 'ok'")
    assert samples(text, "gatehouse_job_runs_total")[(("job", "outbox"), ("outcome", "ok"))] == 1
    assert samples(text, "gatehouse_job_seconds_count")[(("job", "outbox"), ("outcome", "ok"))] == 1
    assert samples(text, "gatehouse_job_last_success_timestamp_seconds")[(("job", "outbox"),)] == pytest.approx(
        finished, abs=0.01)
    assert samples(text, "gatehouse_job_seconds_sum")[(("job", "outbox"), ("outcome", "ok"))] == pytest.approx(
        seconds, abs=0.05)
    assert not list(tmp_path.glob("*.db")), "the worker wrote into a multiprocess directory"


def test_the_outbox_backlog_and_dead_letters_are_read_at_scrape_time(client, database):
    with psycopg.connect(database.owner_url) as conn:  # client built the app: the policy's resources exist
        conn.execute("INSERT INTO outbound_targets (key, resource_id, type) SELECT 'tool', id, 'scim' FROM resources "
                     "WHERE key = 'vpn'")
        for state in ("intent", "intent", "sent", "dead", "confirmed"):
            conn.execute("INSERT INTO outbox (target, person_id, resource, op, cause, state, sent_at, confirmed_at) "
                         "VALUES ('tool', gen_random_uuid(), 'vpn', 'disable', 'revoke', %s, now(), now())", (state,))
    text = client.get("/metrics").text
    assert samples(text, "gatehouse_outbox_backlog") == {(("target", "tool"),): 3}
    assert samples(text, "gatehouse_outbox_dead") == {(("target", "tool"),): 1}
    assert samples(text, "gatehouse_database_up") == {(): 1}


def test_serve_refuses_a_metrics_directory_it_cannot_use(database, tmp_path):
    (tmp_path / "file").write_text("")
    done = gatehouse("serve", env={**db_env(database), "GATEHOUSE_PORT": str(free_port()),
                                   "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "file" / "metrics")}, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith(
        "gatehouse: error: PROMETHEUS_MULTIPROC_DIR: cannot use"), done.stderr


def test_a_worker_killed_and_replaced_leaves_its_counts_in_the_totals(database, tmp_path):
    check = {"Authorization": f"Bearer {make_token(database, 'gateway', scopes=('access:check',))}",
             "Connection": "close"}
    metrics_dir = tmp_path / "metrics"
    with serving(database, tmp_path, GATEHOUSE_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as base:
        def ask(_):
            return requests.get(f"{base}/api/v1/access/check", params={"user": "nobody", "resource": "vpn"},
                                headers=check, timeout=10).status_code

        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(ask, range(12))) == {200}
            counted = checks_per_worker(metrics_dir)
            victim = next(pid for pid, n in counted.items() if n)
            os.kill(int(victim), signal.SIGKILL)  # while idle; gunicorn's arbiter starts another (child_exit)
            deadline = time.monotonic() + 30
            log = tmp_path / "serve.log"
            while len(booted := re.findall(r"Booting worker with pid: (\d+)", log.read_text())) < 3:
                assert time.monotonic() < deadline, "gunicorn did not replace the worker"
                time.sleep(0.1)
            while booted[-1] not in checks_per_worker(metrics_dir):  # until the new worker has answered one
                assert time.monotonic() < deadline, "the replacement worker answered nothing"
                assert set(pool.map(ask, range(4))) == {200}
        scrape = requests.get(f"{base}/metrics", timeout=10).text
    journaled = rows(database, "SELECT count(*) FROM journal WHERE kind = 'check'")[0][0]
    assert samples(scrape, "gatehouse_checks_total") == {(("outcome", "deny"), ("reason", "person_unknown")): journaled}
    assert {victim, booted[-1]} <= set(checks_per_worker(metrics_dir))
