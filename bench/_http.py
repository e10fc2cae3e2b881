"""Small helpers for benchmarks that drive a real server over HTTP."""

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 60, **kw) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=10, **kw).status_code < 500:
                return
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a loaded machine
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {timeout}s")


def gatehouse_exe() -> str:
    return str(Path(sys.executable).with_name("gatehouse"))


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = log.open("w")
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_parallel(items: list, worker, threads: int) -> tuple[float, list[float]]:
    """Run worker(session, item) over items on `threads` threads; return seconds and per-call latencies."""
    latencies: list[float] = []
    chunks = [items[i::threads] for i in range(threads)]

    def loop(chunk):
        with requests.Session() as session:
            for item in chunk:
                t = time.perf_counter()
                worker(session, item)
                latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    pool = [threading.Thread(target=loop, args=(c,)) for c in chunks]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started, latencies


def quantiles(latencies: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(latencies, n=100)
    return q[49] * 1000, q[98] * 1000
