"""The worker and its jobs on a real PostgreSQL (slapd for the LDAP jobs): one runner per job, every run journaled."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from service.db import locks
from service.jobs import registry, worker
from tests.support.cli import db_env, gatehouse
from tests.support.factories import rows
from tests.support.ldap import COUNT, ldap_env, ldap_settings

REPO = Path(__file__).resolve().parents[2]

# A process that runs a job which sleeps, as a worker would, starting at a given moment.
RUNNER = textwrap.dedent("""
    import sys, time
    from service import bootstrap
    from service.jobs import registry
    from service.config import load_settings

    services = bootstrap.build(load_settings())
    job = registry.Job("sleepy", lambda services: time.sleep(float(sys.argv[2])) or {"slept": 1}, every_minutes=1)
    time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
    print(registry.run_job(services, job).outcome, flush=True)
    services.close()
""")


def runner(database, start: float, sleep: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(start), str(sleep)], cwd=REPO, text=True,
                            env={**os.environ, **db_env(database)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_runners_at_once_run_the_job_once(database):
    start = time.time() + 3  # both processes have imported everything by then
    processes = [runner(database, start, 2), runner(database, start, 2)]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in processes)
    assert outcomes == ["busy", "ok"]
    assert rows(database, "SELECT job, outcome, counts FROM job_runs") == [("sleepy", "ok", {"slept": 1})]
    (actor, detail), = rows(database, "SELECT actor, detail FROM journal WHERE kind = 'job'")
    assert actor == "job:sleepy" and detail["job"] == "sleepy" and detail["started"] < detail["finished"]


def test_a_runner_that_dies_leaves_the_job_to_the_next_one(database, services):
    dying = runner(database, 0, 60)
    deadline = time.monotonic() + 30
    while not rows(database, "SELECT 1 FROM job_runs WHERE outcome = 'running'"):
        assert time.monotonic() < deadline and dying.poll() is None
        time.sleep(0.05)
    sleepy = registry.Job("sleepy", lambda services: {"slept": 0}, every_minutes=1)
    assert registry.run_job(services, sleepy).outcome == "busy"  # the first one still holds it
    dying.send_signal(signal.SIGKILL)
    dying.communicate()
    deadline = time.monotonic() + 10
    while (done := registry.run_job(services, sleepy)).outcome == "busy":  # its session ends with it, and the lock
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert done.outcome == "ok"
    assert rows(database, "SELECT outcome, error FROM job_runs ORDER BY started_at") == [
        ("failed", "interrupted: the runner stopped"), ("ok", None)]


def test_a_due_time_is_the_schedules_latest_firing_the_same_on_every_replica():
    at = datetime(2026, 12, 3, 10, 7, 30, tzinfo=UTC)
    assert registry.Job("j", dict, every_minutes=15).due(at) == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    seven = registry.Job("j", dict, every_minutes=7)  # counted from the epoch: 10:05 is a multiple of 7 minutes
    assert seven.due(at) == datetime(2026, 12, 3, 10, 5, tzinfo=UTC)
    assert seven.trigger().get_next_fire_time(None, at) == seven.due(at) + timedelta(minutes=7)  # APScheduler agrees
    assert registry.Job("j", dict, daily_at_hour=6).due(at) == datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    assert registry.Job("j", dict, daily_at_hour=11).due(at) == datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


def test_a_due_time_that_ran_is_skipped_by_the_next_runner_and_one_that_failed_runs_again(database, services):
    calls = []

    def tick(services):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first try fails")
        return {"n": len(calls)}

    daily = registry.Job("tick", tick, every_minutes=24 * 60)  # one due time a day: the calls share it
    assert [registry.run_job(services, daily).outcome for _ in range(3)] == ["failed", "ok", "already"]
    assert registry.run_job(services, daily, trigger="manual").outcome == "ok"  # an operator's run always runs
    due = daily.due(datetime.now(UTC))
    assert rows(database, "SELECT trigger, outcome, due_at FROM job_runs ORDER BY started_at") == [
        ("schedule", "failed", due), ("schedule", "ok", due), ("manual", "ok", None)]
    assert rows(database, "SELECT detail->>'due' FROM journal WHERE kind = 'job' ORDER BY seq") == [
        (due.isoformat(),), (due.isoformat(),), (None,)]


def test_a_failing_job_is_recorded_and_journaled(database, services):
    def broken(services):
        raise RuntimeError("disk on fire\nsecond line")

    done = registry.run_job(services, registry.Job("broken", broken, every_minutes=5))
    assert (done.outcome, done.error) == ("failed", "disk on fire")
    assert rows(database, "SELECT outcome, detail->>'error' FROM journal WHERE kind = 'job'") == [
        ("failed", "disk on fire")]


def test_the_scheduler_coalesces_runs_one_at_a_time_and_catches_up_at_start(settings, services, ldap):
    jobs_on = registry.configured(ldap_settings(settings, ldap, ldap_sync_minutes=7, ldap_full_sync_at=3))
    schedules = {n: j.schedule for n, j in jobs_on.items()}  # other jobs (later issues) may be registered too
    assert (schedules["ldap_incremental"], schedules["ldap_full"]) == ("every 7 min", "daily 03:00 UTC")
    scheduler = worker.build_scheduler(services, jobs_on)
    thread = threading.Thread(target=scheduler.start, kwargs={"paused": True})  # paused: nothing fires
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not scheduler.running:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        entries = {j.id: j for j in scheduler.get_jobs()}
    finally:
        scheduler.shutdown()
        thread.join()
    for entry in entries.values():
        assert (entry.coalesce, entry.max_instances, entry.misfire_grace_time) == (True, 1, worker.MISFIRE_GRACE)
    assert abs(entries["ldap_incremental:start"].next_run_time - datetime.now(UTC)) < timedelta(seconds=5)
    # Every replica fires at the same instants: the epoch's multiples of the interval, whenever it started.
    nxt = entries["ldap_incremental"].next_run_time
    assert (nxt - registry.EPOCH) % timedelta(minutes=7) == timedelta(0) and nxt - datetime.now(UTC) <= timedelta(
        minutes=7)
    assert str(entries["ldap_full"].trigger) == "cron[hour='3', minute='0']" and "ldap_full:start" not in entries
    assert not {"ldap_incremental", "ldap_full"} & set(registry.configured(dataclasses.replace(settings, ldap_url=())))


def test_gatehouse_worker_syncs_at_start_and_stops_on_sigterm(database, ldap):
    env = {**os.environ, **{k: v for k, v in db_env(database).items()}, **ldap_env(ldap),
           "GATEHOUSE_DATA_DIR": str(ldap.directory)}
    process = subprocess.Popen([str(Path(sys.executable).with_name("gatehouse")), "worker"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not rows(database, "SELECT 1 FROM job_runs WHERE outcome = 'ok' AND job = 'ldap_incremental'"):
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    # The outbox, the training sweep and the review deadline run at start too (with nothing to do here).
    assert rows(database, "SELECT job, trigger FROM job_runs WHERE job NOT IN ('outbox', 'training_sweep', "
                          "'reviews_deadline')") == [("ldap_incremental", "schedule")]
    assert rows(database, "SELECT count(*) FROM people") == [(COUNT,)]
    assert rows(database, "SELECT actor FROM sync_runs") == [("job:ldap_incremental",)]
    assert '"worker started: ldap_incremental (every 15 min), ldap_full (daily 02:00 UTC)' in stderr


def test_jobs_run_is_the_same_path_and_journals_kind_job(database, ldap):
    env = {**db_env(database), **ldap_env(ldap)}
    ran = gatehouse("jobs", "run", "ldap_incremental", env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("job ldap_incremental ok") and f"created={COUNT}" in ran.stdout
    (actor, detail), = rows(database, "SELECT actor, detail FROM journal WHERE kind = 'job'")
    assert actor.startswith("operator:") and detail["trigger"] == "manual" and detail["counts"]["created"] == COUNT
    listed = gatehouse("jobs", "list", env=env)
    assert listed.returncode == 0
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert lines["ldap_incremental"].split()[:4] == ["ldap_incremental", "every", "15", "min"]
    assert lines["ldap_incremental"].endswith(" ok")
    assert lines["ldap_full"].split() == ["ldap_full", "daily", "02:00", "UTC", "never", "-"]
    unknown = gatehouse("jobs", "run", "nope", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("gatehouse: error: no job 'nope'; configured: ldap_incremental, ldap_full")
    down = gatehouse("jobs", "run", "ldap_full", env={**env, "GATEHOUSE_LDAP_URL": "ldap://127.0.0.1:1"})
    assert down.returncode == 1 and down.stdout.startswith("job ldap_full failed: no LDAP server answered")
    assert rows(database, "SELECT outcome FROM journal WHERE kind = 'job' ORDER BY seq") == [("ok",), ("failed",)]


def test_a_sync_job_skips_while_another_sync_of_the_source_runs(database, services, settings, ldap):
    from service import bootstrap

    synced = bootstrap.build(ldap_settings(settings, ldap), database)
    try:
        with locks.advisory_lock(database.app_url, "sync:ldap", timeout=3) as held:
            assert held is not None
            done = registry.run_job(synced, registry.configured(synced.settings)["ldap_incremental"])
    finally:
        synced.close()
    assert (done.outcome, done.error) == ("skipped", "another LDAP sync is running")
    assert rows(database, "SELECT outcome FROM journal WHERE kind = 'job'") == [("skipped",)]
    with psycopg.connect(database.owner_url) as conn:
        assert conn.execute("SELECT count(*) FROM sync_runs").fetchone()[0] == 0


def test_a_lock_is_free_for_the_next_taker_as_soon_as_its_block_ends(database):
    """Back-to-back runs (a sync, then the next): closing the session alone releases the lock only once its
    backend has exited, and a taker that asks in between is told "busy"."""
    with psycopg.connect(database.app_url, autocommit=True) as other:
        for _ in range(200):
            with locks.advisory_lock(database.app_url, "sync:ldap", timeout=3) as first:
                assert first is not None
            taken = other.execute("SELECT pg_try_advisory_lock(%s, hashtext('sync:ldap'))", (locks.LOCK_CLASS,))
            assert taken.fetchone() == (True,)
            other.execute("SELECT pg_advisory_unlock_all()")
