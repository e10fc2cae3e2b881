"""`gatehouse serve` on a fresh machine: embedded PostgreSQL, migrated, ready, stopped cleanly."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import requests

from .conftest import db_env, gatehouse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}")
        try:
            r = requests.get(url, timeout=2)
            if r.status_code == 200:
                return r
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a loaded machine
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready in {timeout}s")


@pytest.fixture
def data_dir():
    path = Path(tempfile.mkdtemp(prefix="gatehouse-serve-", dir="/tmp"))
    yield path
    pid_file = path / "postgres" / "postmaster.pid"
    if pid_file.exists():  # a failed test left the server running: stop it
        subprocess.run(["pkill", "-f", str(path / "postgres")], check=False)
    shutil.rmtree(path, ignore_errors=True)


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
