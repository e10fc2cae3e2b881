"""Settings: read once, validated, and a bad one stops start-up with one line and exit 2."""

from pathlib import Path

import pytest

from service.config import Settings, load_settings
from service.errors import ConfigError
from tests.support.cli import gatehouse


def test_defaults():
    s = load_settings({})
    assert (s.host, s.port, s.database_url, s.log_level) == ("127.0.0.1", 8080, None, "INFO")
    assert s.public_base_url == "http://localhost:8080"  # an IP address is no WebAuthn RP ID


def test_environment_wins_over_the_file(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('port = 9000\nlog_level = "debug"\nbase_url = "https://gate.example.com/"\n')
    s = load_settings({"GATEHOUSE_CONFIG": str(f), "GATEHOUSE_PORT": "9100"})
    assert (s.port, s.log_level, s.base_url) == (9100, "DEBUG", "https://gate.example.com")


@pytest.mark.parametrize("env, setting", [
    ({"GATEHOUSE_PORT": "70000"}, "GATEHOUSE_PORT"),
    ({"GATEHOUSE_PORT": "eighty"}, "GATEHOUSE_PORT"),
    ({"GATEHOUSE_DATABASE_URL": "mysql://x@h/db"}, "GATEHOUSE_DATABASE_URL"),
    ({"GATEHOUSE_DATABASE_URL": "postgresql://u@h:99999/db"}, "GATEHOUSE_DATABASE_URL"),
    ({"GATEHOUSE_DATABASE_URL": "postgresql://u@h:5432"}, "GATEHOUSE_DATABASE_URL"),
    ({"GATEHOUSE_BASE_URL": "gate.example.com"}, "GATEHOUSE_BASE_URL"),
    ({"GATEHOUSE_LOG_LEVEL": "loud"}, "GATEHOUSE_LOG_LEVEL"),
    ({"GATEHOUSE_POLICY_FILE": "/nonexistent/policy.toml"}, "GATEHOUSE_POLICY_FILE"),
    ({"GATEHOUSE_CONFIG": "/nonexistent/gatehouse.toml"}, "GATEHOUSE_CONFIG"),
    ({"GATEHOUSE_DB_TIMEOUT": "0"}, "GATEHOUSE_DB_TIMEOUT"),
    ({"GATEHOUSE_CHECK_IDENTIFIERS": "user_name,phone"}, "GATEHOUSE_CHECK_IDENTIFIERS"),
    ({"GATEHOUSE_CHECK_IDENTIFIERS": " , "}, "GATEHOUSE_CHECK_IDENTIFIERS"),
])
def test_bad_values_name_the_setting(env, setting):
    with pytest.raises(ConfigError) as e:
        load_settings(env)
    assert e.value.setting == setting


def test_check_identifiers_default_to_user_name_and_email_and_employee_numbers_are_opt_in(tmp_path):
    assert load_settings({}).check_identifiers == ("user_name", "email")
    chosen = load_settings({"GATEHOUSE_CHECK_IDENTIFIERS": " email, employee_number,email "})
    assert chosen.check_identifiers == ("email", "employee_number")
    f = tmp_path / "g.toml"
    f.write_text('check_identifiers = ["user_name", "employee_number"]\n')
    assert load_settings({"GATEHOUSE_CONFIG": str(f)}).check_identifiers == ("user_name", "employee_number")


def test_unknown_key_in_file(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings({"GATEHOUSE_CONFIG": str(f)})


def test_data_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        load_settings({"GATEHOUSE_DATA_DIR": str(f)})


def test_default_policy_file_exists():
    assert Path(Settings().policy_file).is_file()


@pytest.mark.parametrize("command", [["serve"], ["db", "migrate"], ["journal", "verify"]])
@pytest.mark.parametrize("env, fragment", [
    ({"GATEHOUSE_PORT": "99999"}, "GATEHOUSE_PORT: 99999 is out of range"),
    ({"GATEHOUSE_DATABASE_URL": "postgresql://%zz@[bad/db"}, "GATEHOUSE_DATABASE_URL: malformed URL"),
    ({"GATEHOUSE_POLICY_FILE": "/nonexistent.toml"}, "GATEHOUSE_POLICY_FILE: cannot read /nonexistent.toml"),
])
def test_cli_bad_setting_is_one_line_and_exit_2(command, env, fragment):
    done = gatehouse(*command, env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["serve"], ["db", "migrate"], ["db", "status"], ["journal", "verify"]])
def test_cli_unreachable_database_is_one_line_and_exit_2(command):
    done = gatehouse(*command, env={"GATEHOUSE_DATABASE_URL": "postgresql://gatehouse@127.0.0.1:1/gatehouse"})
    assert done.returncode == 2
    assert done.stderr.startswith("gatehouse: error: cannot connect to the database")
    assert done.stderr.count("\n") == 1, done.stderr


def test_cli_usage_error_is_one_line():
    done = gatehouse("db", "frobnicate")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
