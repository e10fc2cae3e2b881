"""The embedded PostgreSQL: the last gatehouse process to exit stops it, in any order of starts, crashes and exits.

Real processes only: `gatehouse serve` and one-shot commands on one data directory, a postmaster killed with -9
and brought back by another command, a serve killed with -9. After each scenario no postgres process for that
data directory may remain.
"""

import signal
import subprocess
import time
from pathlib import Path

import psutil
import requests

from tests.support.cli import gatehouse
from tests.support.net import free_port, start_gatehouse, stop_gatehouse, wait_ready


def postmasters(data_dir: Path) -> list[psutil.Process]:
    """The postgres processes whose command line names this data directory's cluster (the postmaster: -D PGDATA)."""
    pgdata = str(data_dir / "postgres")
    found = []
    for p in psutil.process_iter(["name", "cmdline", "status"]):
        if p.info["name"] == "postgres" and p.info["status"] != psutil.STATUS_ZOMBIE \
                and any(pgdata in arg for arg in p.info["cmdline"] or ()):
            found.append(p)
    return found


def wait_none_left(data_dir: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while postmasters(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not postmasters(data_dir), f"embedded PostgreSQL left running: {postmasters(data_dir)}"


def serve(data_dir: Path, name: str):
    port = free_port()
    log = data_dir / f"{name}.log"
    proc = start_gatehouse("serve", {"GATEHOUSE_DATA_DIR": str(data_dir), "GATEHOUSE_PORT": str(port),
                                     "GATEHOUSE_WORKERS": "1"}, log)
    wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    return proc, log, port


def command(data_dir: Path, *args: str):
    done = gatehouse(*args, env={"GATEHOUSE_DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr
    return done


def kill_postmaster(data_dir: Path) -> int:
    [pm] = postmasters(data_dir)
    pm.send_signal(signal.SIGKILL)
    pm.wait(10)
    return pm.pid


def test_a_postmaster_killed_and_brought_back_by_a_command_is_stopped_by_the_last_serve(data_dir):
    proc, log, port = serve(data_dir, "serve")
    try:
        killed = kill_postmaster(data_dir)
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 503
        command(data_dir, "db", "status")  # brings it back, and exits: serve still holds it
        [back] = postmasters(data_dir)
        assert back.pid != killed
        deadline = time.monotonic() + 20  # serve's pool reconnects to the new postmaster
        while requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "serve never reached the postmaster brought back"
            time.sleep(0.5)
    finally:
        stop_gatehouse(proc, log)
    wait_none_left(data_dir, timeout=5)


def test_two_serves_one_killed_the_other_exiting_last_stops_it(data_dir):
    first, first_log, _ = serve(data_dir, "first")
    second, second_log, second_port = serve(data_dir, "second")
    try:
        first.send_signal(signal.SIGKILL)  # no atexit: its line in the holders stays, dead
        first.wait(10)
        time.sleep(2)  # the guardian's round: a live holder remains, so it must not stop anything
        assert postmasters(data_dir)
        assert requests.get(f"http://127.0.0.1:{second_port}/readyz", timeout=10).status_code == 200
        command(data_dir, "journal", "verify")  # a command that joins and leaves must not stop it either
        assert requests.get(f"http://127.0.0.1:{second_port}/readyz", timeout=10).status_code == 200
    finally:
        stop_gatehouse(second, second_log)
    wait_none_left(data_dir, timeout=5)


def test_the_last_serve_killed_leaves_nothing_running_and_the_next_command_starts_afresh(data_dir):
    proc, _, _ = serve(data_dir, "serve")
    proc.send_signal(signal.SIGKILL)  # cannot run atexit: the guardian notices within seconds
    proc.wait(10)
    wait_none_left(data_dir, timeout=15)
    assert "OK " in command(data_dir, "journal", "verify").stdout
    wait_none_left(data_dir, timeout=5)  # that command was the last (and only) holder


def test_a_stale_postmaster_pid_naming_a_live_process_of_another_kind_does_not_block_the_start(data_dir):
    command(data_dir, "journal", "verify")  # creates and migrates the cluster, then stops it
    wait_none_left(data_dir)
    stand_in = subprocess.Popen(["sleep", "60"])  # the pid a crashed postmaster's file names, now someone else's
    try:
        pid_file = data_dir / "postgres" / "postmaster.pid"
        pid_file.write_text(f"{stand_in.pid}\n{data_dir / 'postgres'}\n1700000000\n5432\n{data_dir / 'postgres'}\n"
                            "\n  5432001         0\nready   \n")
        assert "OK " in command(data_dir, "journal", "verify").stdout
        assert stand_in.poll() is None  # never signalled: it is not ours
    finally:
        stand_in.kill()
        stand_in.wait()
    wait_none_left(data_dir, timeout=5)
