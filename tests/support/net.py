"""Ports, readiness and data directories for the real servers the tests start (gatehouse serve, slapd, SMTP, OIDC)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot listen on port 0 themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> requests.Response:
    """Poll url until it answers 200; fail at once if the process exited, or after timeout seconds."""
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
    """A fresh GATEHOUSE_DATA_DIR under /tmp (pgserver opens permissions on its parents); any server left is stopped."""
    path = Path(tempfile.mkdtemp(prefix="gatehouse-serve-", dir="/tmp"))
    yield path
    pid_file = path / "postgres" / "postmaster.pid"
    if pid_file.exists():  # a failed test left the server running: stop it
        subprocess.run(["pkill", "-f", str(path / "postgres")], check=False)
    shutil.rmtree(path, ignore_errors=True)


def start_gatehouse(command: str, env: dict, log_path: Path) -> subprocess.Popen:
    """`gatehouse COMMAND` as a real process with only `env`'s GATEHOUSE_* settings, its output to log_path."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    full.update(env)
    with log_path.open("w") as log:
        return subprocess.Popen([str(Path(sys.executable).with_name("gatehouse")), command], env=full, stdout=log,
                                stderr=subprocess.STDOUT)


def stop_gatehouse(proc: subprocess.Popen, log_path: Path) -> str:
    """SIGTERM, a clean exit (0 or 143), and what it printed."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    output = log_path.read_text()
    assert proc.returncode in (0, 143), output[-2000:]
    return output
