"""Ports and readiness for the real servers the tests start (gatehouse serve, slapd, SMTP, the OIDC provider)."""

import socket
import subprocess
import time

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
