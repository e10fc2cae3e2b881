"""A PostgreSQL server of a test's own, to stop with `pg_ctl stop -m immediate` (a crash) and start again.

A pgserver cluster under /tmp; as root its files belong to the `pgserver` user, whom pg_ctl must run as. The
shared server of the session (tests/conftest.py) is never stopped: a test that kills PostgreSQL uses this one.
"""

import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import pytest

from service import db
from service.db import migrate


class StoppableServer:
    """A pgserver cluster in /tmp, stopped (-m immediate) and started again with pg_ctl."""

    def __init__(self, pgdata: Path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
        self.pgdata = pgdata
        self.pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
        self.server = pgserver.get_server(pgdata, cleanup_mode="delete")
        info = self.server.get_postmaster_info()
        self.socket_dir, self.port = str(info.socket_dir), info.port

    def url(self, dbname="postgres", user="postgres") -> str:
        return db.url(host=self.socket_dir, port=self.port, dbname=dbname, user=user)

    def _ctl(self, *args: str) -> subprocess.CompletedProcess:
        as_owner = ["runuser", "-u", "pgserver", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*as_owner, str(self.pg_ctl), "-D", str(self.pgdata), *args],
                              capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        result = self._ctl("-w", "stop", "-m", "immediate")
        assert result.returncode == 0, result.stderr

    def start(self) -> None:
        result = self._ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l",
                           str(self.pgdata / "restart.log"), "start")
        assert result.returncode == 0, result.stderr

    def migrated(self) -> db.Database:
        """The roles and database of a service, migrated: the two URLs."""
        db.ensure_roles_and_database(self.url(), owner="gatehouse_owner", app="gatehouse_app", dbname="gatehouse")
        database = db.Database(owner_url=self.url("gatehouse", "gatehouse_owner"),
                               app_url=self.url("gatehouse", "gatehouse_app"), app_role="gatehouse_app")
        migrate.migrate(database)
        return database


@pytest.fixture
def stoppable():
    parent = Path(tempfile.mkdtemp(prefix="gatehouse-failclosed-", dir="/tmp"))
    server = StoppableServer(parent / "pgdata")
    yield server
    server._ctl("-w", "stop", "-m", "immediate")  # the restarted postmaster is not the one pgserver knows
    server.server.cleanup()  # now only deletes the data directory (and drops its exit hook)
    shutil.rmtree(parent, ignore_errors=True)
