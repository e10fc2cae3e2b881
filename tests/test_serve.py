"""`gatehouse serve` on a fresh machine: embedded PostgreSQL, migrated, ready, stopped cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import requests

from service.db import migrate
from tests.support.cli import db_env, gatehouse
from tests.support.net import free_port, start_gatehouse, stop_gatehouse, wait_ready


def test_serve_on_the_embedded_default_answers_readyz_and_stops_cleanly(data_dir):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(GATEHOUSE_DATA_DIR=str(data_dir), GATEHOUSE_PORT=str(port), GATEHOUSE_WORKERS="1")
    exe = Path(sys.executable).with_name("gatehouse")
    log = (data_dir / "serve.log").open("w")
    proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        r = wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        assert r.json()["status"] == "ready"
        assert r.headers["X-Request-Id"]
        # A second process on the same data dir joins the running server rather than starting another.
        pid_before = (data_dir / "postgres" / "postmaster.pid").read_text().split()[0]
        status = gatehouse("db", "status", env={"GATEHOUSE_DATA_DIR": str(data_dir)})
        assert status.returncode == 0 and "applied 002_journal" in status.stdout, status.stderr
        verify = gatehouse("journal", "verify", env={"GATEHOUSE_DATA_DIR": str(data_dir)})
        assert verify.stdout.startswith("OK 0 "), verify.stderr
        assert (data_dir / "postgres" / "postmaster.pid").read_text().split()[0] == pid_before
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert proc.returncode in (0, 143), (data_dir / "serve.log").read_text()[-2000:]
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "embedded PostgreSQL left running"


def test_a_worker_that_stops_writes_the_anonymous_refusals_it_counted(database, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(db_env(database), GATEHOUSE_DATA_DIR=str(tmp_path), GATEHOUSE_PORT=str(port), GATEHOUSE_WORKERS="1")
    exe = Path(sys.executable).with_name("gatehouse")
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        for _ in range(5):
            assert requests.get(f"http://127.0.0.1:{port}/api/v1/access/check", timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    with psycopg.connect(database.owner_url) as conn:
        rows = [r[0] for r in conn.execute("SELECT detail FROM journal WHERE outcome = 'refused'")]
    assert rows and {d["route"] for d in rows} == {"GET /api/v1/access/check"}, (tmp_path / "serve.log").read_text()
    assert sum(d["count"] for d in rows) == 5 and len(rows) <= 2  # two if a minute turned meanwhile


# --- two URLs (production): no long-running process connects as the owner ------------------------

# An owner URL nothing listens on: a process that tried to use it would fail to start.
NO_OWNER = "postgresql://gatehouse_test_owner@127.0.0.1:1/nowhere"
LDAP_DOWN = {"GATEHOUSE_LDAP_URL": "ldap://127.0.0.1:1", "GATEHOUSE_LDAP_ALLOW_PLAINTEXT": "true",
             "GATEHOUSE_LDAP_USER_BASE": "ou=people,dc=example,dc=org"}


def _query(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


@pytest.mark.parametrize("command, owner", [("serve", True), ("worker", True), ("serve", False), ("worker", False)],
                         ids=["serve-two-urls", "worker-two-urls", "serve-app-url-only", "worker-app-url-only"])
def test_refuses_to_start_as_the_app_role_while_a_migration_is_pending(database, command, owner):
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 9")
    urls = db_env(database) if owner else {"GATEHOUSE_DATABASE_URL": database.app_url}
    env = {**urls, **LDAP_DOWN, "GATEHOUSE_PORT": str(free_port())}
    done = gatehouse(command, env=env, timeout=60)
    assert (done.returncode, done.stderr) == (2, "gatehouse: error: 1 migration(s) pending, from "
                                                 "009_journal_hardening: run gatehouse db migrate\n")
    assert _query(database.owner_url, "SELECT count(*) FROM schema_migrations WHERE version = 9") == [(0,)]


def test_two_url_mode_refuses_a_database_never_migrated(empty_database):
    done = gatehouse("serve", env={**db_env(empty_database), "GATEHOUSE_PORT": str(free_port())}, timeout=60)
    assert done.returncode == 2 and done.stderr.endswith("from 001_core: run gatehouse db migrate\n"), done.stderr
    assert _query(empty_database.owner_url, "SELECT to_regclass('schema_migrations')") == [(None,)]


def test_serve_in_two_url_mode_never_connects_as_the_owner(database, tmp_path, pg_superuser):
    port = free_port()
    env = {**db_env(database), "GATEHOUSE_DATABASE_OWNER_URL": NO_OWNER, "GATEHOUSE_PORT": str(port),
           "GATEHOUSE_WORKERS": "1"}
    proc = start_gatehouse("serve", env, tmp_path / "serve.log")
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/readyz", proc).json()["status"] == "ready"
        dbname = psycopg.conninfo.conninfo_to_dict(database.app_url)["dbname"]
        # Only the app role (the start-up's policy connection may not have left pg_stat_activity yet).
        assert _query(pg_superuser, "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s",
                      (dbname,)) == [(database.app_role,)]
    finally:
        stop_gatehouse(proc, tmp_path / "serve.log")


def test_worker_in_two_url_mode_never_connects_as_the_owner(database, tmp_path):
    env = {**db_env(database), **LDAP_DOWN, "GATEHOUSE_DATABASE_OWNER_URL": NO_OWNER}
    proc = start_gatehouse("worker", env, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 60
        while not _query(database.app_url, "SELECT 1 FROM job_runs WHERE job = 'ldap_incremental'"):
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.1)
    finally:
        output = stop_gatehouse(proc, tmp_path / "worker.log")
    assert "worker started" in output


def test_one_url_development_mode_as_the_owner_still_migrates_at_start(empty_database, tmp_path):
    port = free_port()
    env = {"GATEHOUSE_DATABASE_URL": empty_database.owner_url, "GATEHOUSE_PORT": str(port), "GATEHOUSE_WORKERS": "1"}
    proc = start_gatehouse("serve", env, tmp_path / "serve.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    finally:
        stop_gatehouse(proc, tmp_path / "serve.log")
    assert _query(empty_database.owner_url, "SELECT count(*) FROM schema_migrations") == [(len(migrate.available()),)]
