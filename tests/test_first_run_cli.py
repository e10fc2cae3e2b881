"""A data directory or database never migrated: every command says so in one line, or (embedded) migrates it.
And the front page at `/`, which says what to do next."""

import pytest

from tests.support.admin import ORIGIN, make_app, new_enrollment
from tests.support.cli import db_env, gatehouse

COMMANDS = [("jobs", "list"), ("access", "explain", "bob", "vpn"), ("admin", "enroll", "ada@example.com"),
            ("clients", "list"), ("people", "role", "add", "ada@example.com", "hr"), ("journal", "verify"),
            ("sync", "runs"), ("training", "import", "{csv}"), ("jobs", "run", "training_sweep")]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_command_on_a_database_never_migrated_says_so_in_one_line(empty_database, command, tmp_path):
    csv = tmp_path / "done.csv"
    csv.write_text("person,course,completed_at,source_id\nbob,security-awareness,2026-01-05T10:00:00Z,c-1\n")
    done = gatehouse(*(a.format(csv=csv) for a in command), env=db_env(empty_database))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("gatehouse: error: ") and "run gatehouse db migrate" in done.stderr, done.stderr


def test_commands_migrate_a_fresh_embedded_data_directory(data_dir):
    env = {"GATEHOUSE_DATA_DIR": str(data_dir)}
    jobs = gatehouse("jobs", "list", env=env)
    assert jobs.returncode == 0 and jobs.stdout.startswith("NAME"), jobs.stderr
    assert jobs.stderr == ""  # pgserver's start-up narrative is DEBUG now
    explained = gatehouse("access", "explain", "bob", "vpn", env=env)
    assert explained.returncode == 1 and "no such person [person_unknown]" in explained.stdout, explained.stderr
    shell = gatehouse("db", "shell", env=env, input="SELECT count(*) AS people FROM people;\n")
    assert shell.returncode == 0, shell.stderr
    assert "people" in shell.stdout and "0" in shell.stdout.split()
    assert shell.stderr.startswith("psql as gatehouse_app on database gatehouse at ")
    owner = gatehouse("db", "shell", "--owner", env=env, input="SELECT current_user;\n")
    assert owner.returncode == 0 and "gatehouse_owner" in owner.stdout
    quiet = gatehouse("jobs", "run", "training_sweep", env=env)  # configures logging, starts the server again
    assert quiet.returncode == 0 and '"pgserver"' not in quiet.stderr, quiet.stderr
    verbose = gatehouse("jobs", "run", "training_sweep", env={**env, "GATEHOUSE_LOG_LEVEL": "DEBUG"})
    assert '"level": "debug", "logger": "pgserver"' in verbose.stderr, verbose.stderr


def _front(settings, database, host="localhost:8080"):
    app, services = make_app(settings, database)
    try:
        return app.test_client().get("/", base_url=f"http://{host}")
    finally:
        services.close()


def test_the_front_page_says_how_to_enroll_the_first_admin(settings, database):
    r = _front(settings, database)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and r.content_type.startswith("text/html")
    assert "gatehouse admin enroll you@example.com" in page and 'id="wrong-address"' not in page
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_the_front_page_is_the_console_once_an_admin_exists(settings, database):
    new_enrollment(database)
    r = _front(settings, database)
    assert r.status_code == 302 and r.location == "/admin"


def test_the_front_page_names_the_address_keys_work_at(settings, database):
    new_enrollment(database)
    r = _front(settings, database, host="127.0.0.1:8080")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="wrong-address"' in page and f'href="{ORIGIN}/admin"' in page
