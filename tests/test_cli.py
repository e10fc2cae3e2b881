"""The command line's error contract: one line on stderr and an exit code, never a traceback."""

import psycopg
import pytest

from tests.support.cli import db_env, gatehouse


@pytest.mark.parametrize("command, table", [
    (("clients", "list"), "api_clients"),
    (("journal", "verify"), "journal"),
])
def test_a_database_error_is_one_line_and_exit_1(database, command, table):
    with psycopg.connect(database.owner_url) as conn:
        conn.execute(f"REVOKE SELECT ON {table} FROM {database.app_role}")
    done = gatehouse(*command, env=db_env(database))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"gatehouse: error: database error: permission denied for table {table}\n"
