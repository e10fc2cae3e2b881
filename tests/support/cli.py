"""The real `gatehouse` command line, run in a subprocess, and the environment that names a test database."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from service import db
from tests.support.net import free_port, wait_ready


def gatehouse(*args: str, env: dict | None = None, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `gatehouse` command line in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    full_env.update(env or {})
    exe = Path(sys.executable).with_name("gatehouse")
    return subprocess.run([str(exe), *args], env=full_env, capture_output=True, text=True, timeout=timeout, **kwargs)

def db_env(database: db.Database) -> dict:
    """Environment naming a test database, in the two-URL mode."""
    return {"GATEHOUSE_DATABASE_URL": database.app_url, "GATEHOUSE_DATABASE_OWNER_URL": database.owner_url}


@contextlib.contextmanager
def serving(database, tmp_path, **settings):
    """`gatehouse serve` on this test's database, as a real process, with these GATEHOUSE_* settings more."""
    port = free_port()
    base = f"http://localhost:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(db_env(database), GATEHOUSE_PORT=str(port), GATEHOUSE_BASE_URL=base, GATEHOUSE_WORKERS="1",
               GATEHOUSE_HOST="127.0.0.1")
    env.update(settings)  # GATEHOUSE_WORKERS among them
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("gatehouse")), "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


@contextlib.contextmanager
def serving_several(database, tmp_path, count: int, **settings):
    """`count` serving() processes started at once (each in tmp_path/web-N): their base URLs."""
    from concurrent.futures import ThreadPoolExecutor

    managers = []
    for n in range(count):
        (tmp_path / f"web-{n}").mkdir()
        managers.append(serving(database, tmp_path / f"web-{n}", **settings))
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(m.__enter__) for m in managers]
        for m, f in zip(managers, futures, strict=True):
            if f.exception() is None:  # stopped at the end, even if another one failed to start
                stack.push(m.__exit__)
        for f in futures:
            f.result()  # the first failure to start, if any
        yield [f.result() for f in futures]


def worker_process(database, log_path: Path, **env: str) -> subprocess.Popen:
    """`gatehouse worker` on this test's database, as a real process, with these variables more; output appended to
    log_path, whose folder is its GATEHOUSE_DATA_DIR."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    full.update(db_env(database), GATEHOUSE_DATA_DIR=str(log_path.parent), **env)
    with log_path.open("a") as log:
        return subprocess.Popen([str(Path(sys.executable).with_name("gatehouse")), "worker"], env=full, stdout=log,
                                stderr=subprocess.STDOUT)
