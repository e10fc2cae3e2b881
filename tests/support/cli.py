"""The real `gatehouse` command line, run in a subprocess, and the environment that names a test database."""

import os
import subprocess
import sys
from pathlib import Path

from service import db


def gatehouse(*args: str, env: dict | None = None, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `gatehouse` command line in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    full_env.update(env or {})
    exe = Path(sys.executable).with_name("gatehouse")
    return subprocess.run([str(exe), *args], env=full_env, capture_output=True, text=True, timeout=timeout, **kwargs)

def db_env(database: db.Database) -> dict:
    """Environment naming a test database, in the two-URL mode."""
    return {"GATEHOUSE_DATABASE_URL": database.app_url, "GATEHOUSE_DATABASE_OWNER_URL": database.owner_url}

