"""The embedded PostgreSQL's lifecycle: the first gatehouse process on a data directory starts it, the last stops it.

pgserver's own bookkeeping cannot keep that promise: each process remembers the postmaster it met, so one that
was killed and brought back by another command is never stopped ("is my postmaster still running? no: done"),
and a gatehouse process killed with -9 stays on its list of holders for ever, so nobody is ever last.

Here the holders are a file next to the cluster (`postgres.holders`: one "pid start-time" a line), read and
written under an flock (`postgres.lock`) that every start and stop on the data directory takes:
- joining starts the postmaster if none runs (whoever started the last one, whatever killed it) and adds us;
- leaving (atexit) removes us and every holder that is no longer alive; if none remains, it stops the
  postmaster that runs *now*, read afresh from postmaster.pid;
- a holder that cannot leave (kill -9) is covered by a guardian: one small process per data directory that
  checks the holders every second and stops the postmaster once none is alive, then exits.
"""

import atexit
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

_registered: dict[Path, int] = {}  # pgdata -> the pid that joined it (a forked gunicorn worker inherits atexit)


def _quiet_import_pgserver():
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
        warnings.simplefilter("ignore")
        import pgserver  # heavy; only embedded mode pays for it
        from pgserver.utils import PostmasterInfo
    return pgserver, PostmasterInfo


@contextlib.contextmanager
def _locked(pgdata: Path):
    """The data directory's start/stop lock, across processes (released by the kernel if we die holding it)."""
    with open(pgdata.parent / "postgres.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _holders_file(pgdata: Path) -> Path:
    return pgdata.parent / "postgres.holders"


def _me() -> tuple[int, float]:
    return os.getpid(), psutil.Process().create_time()


def _alive(pid: int, started: float) -> bool:
    """This very process still runs (a pid reused by another process does not count)."""
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - started) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _read_live(pgdata: Path) -> list[tuple[int, float]]:
    try:
        text = _holders_file(pgdata).read_text()
    except FileNotFoundError:
        return []
    holders = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            pid, started = line.split()
            if _alive(int(pid), float(started)):
                holders.append((int(pid), float(started)))
    return holders


def _write(pgdata: Path, holders: list[tuple[int, float]]) -> None:
    tmp = _holders_file(pgdata).with_suffix(".tmp")
    tmp.write_text("".join(f"{pid} {started!r}\n" for pid, started in holders))
    tmp.replace(_holders_file(pgdata))


def postmaster(pgdata: Path) -> psutil.Process | None:
    """The postmaster running on pgdata now, whoever started it; None when none runs."""
    _, PostmasterInfo = _quiet_import_pgserver()
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, AssertionError, ValueError):  # a half-written or stale file
        return None
    if info is None or info.process is None:
        return None
    try:
        if info.process.name() != "postgres":  # the pid of a postmaster killed long ago, reused
            return None
    except psutil.Error:
        return None
    return info.process


def join(pgdata: Path):
    """Start the postmaster if none runs, count this process among its holders; pgserver's PostmasterInfo back."""
    pgserver, PostmasterInfo = _quiet_import_pgserver()
    with _locked(pgdata):
        server = pgserver.get_server(pgdata, cleanup_mode=None)  # stopping is ours, not pgserver's
        pid_file = pgdata / "postmaster.pid"
        if pid_file.exists() and postmaster(pgdata) is None:
            # A crashed postmaster's file, its pid perhaps reused by another process, which pgserver would take
            # for a running server: under the lock, with no postgres on that pid, it is safe to drop.
            pid_file.unlink(missing_ok=True)
        server.ensure_postgres_running()  # reads postmaster.pid afresh: restarts one another process lost
        me = _me()
        holders = [h for h in _read_live(pgdata) if h != me]
        _write(pgdata, [*holders, me])
        if _registered.get(pgdata) != me[0]:
            _registered[pgdata] = me[0]
            atexit.register(leave, pgdata)
        _ensure_guardian(pgdata)
        return PostmasterInfo.read_from_pgdata(pgdata)


def leave(pgdata: Path) -> None:
    """This process is done with pgdata: stop the postmaster if no other holder is alive."""
    if _registered.get(pgdata) != os.getpid():  # a forked child: its parent joined, not it
        return
    del _registered[pgdata]
    with _locked(pgdata):
        me = _me()
        holders = [h for h in _read_live(pgdata) if h != me]
        _write(pgdata, holders)
        if not holders:
            stop(pgdata)


def stop(pgdata: Path, timeout: float = 30) -> None:
    """Stop the running postmaster (fast shutdown: sessions ended, a clean checkpoint); kill it if it hangs."""
    process = postmaster(pgdata)
    if process is None:
        return
    log.debug("stopping the embedded PostgreSQL in %s (pid %s)", pgdata, process.pid)
    with contextlib.suppress(psutil.Error):
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(5)


# The guardian: `python -m service.db.lifecycle PGDATA`, one per data directory (its pid in postgres.guardian).

def _ensure_guardian(pgdata: Path) -> None:
    """Start the guardian unless one runs; called under the lock."""
    pid_file = pgdata.parent / "postgres.guardian"
    with contextlib.suppress(FileNotFoundError, ValueError):
        pid, started = pid_file.read_text().split()
        if _alive(int(pid), float(started)):
            return
    child = subprocess.Popen(  # its own session: a terminal's ^C or a test's process group does not reach it
        [sys.executable, "-m", "service.db.lifecycle", str(pgdata)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )
    pid_file.write_text(f"{child.pid} {psutil.Process(child.pid).create_time()!r}\n")


def guard(pgdata: Path, every: float = 1.0) -> None:
    """Until the postmaster is gone: once no holder is alive (all exited or were killed), stop it.

    It leaves by removing its pid file under the lock, so a join after that starts a new guardian.
    """
    while True:
        time.sleep(every)
        with _locked(pgdata):
            running = postmaster(pgdata) is not None
            if running and _read_live(pgdata):
                continue
            if running:  # and no holder alive
                stop(pgdata)
                _write(pgdata, [])
            (pgdata.parent / "postgres.guardian").unlink(missing_ok=True)  # gone: the next join starts a guardian
            return


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    guard(Path(sys.argv[1]))
