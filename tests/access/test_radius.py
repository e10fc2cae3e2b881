"""FreeRADIUS for real (deploy/radius/) in front of a real `gatehouse serve`: Accept exactly when Gatehouse allows.

Debian's freeradius, freeradius-rest and freeradius-utils must be installed
(`bash tests/run` installs them); without them these tests fail, not skip.
"""

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime

import psycopg
import pytest

from tests.support.factories import add_completion, add_grant, add_person, allowed_person, lapsed_person
from tests.support.radiusserver import (
    CHECK_ENV,
    RADIUS_CONFIG,
    SECRET,
    RadiusServer,
    StubApi,
    gateway_token,
    parse_radclient,
    serving,
    tool,
)

PASSWORD = "s3cret-Pa55word"
UNAVAILABLE = "gatehouse: access service unavailable"
NAME_REFUSED = "gatehouse: user name refused"


@pytest.fixture
def serve(database, tmp_path):
    """`gatehouse serve` on this test's database."""
    with serving(database, tmp_path) as server:
        yield server


@pytest.fixture
def radius(serve, database, tmp_path):
    """FreeRADIUS with the shipped configuration, started after Gatehouse, with a gateway token."""
    with RadiusServer.start(tmp_path, gatehouse_url=serve.url, token=gateway_token(database)) as server:
        yield server


def _checks(database) -> list[tuple]:
    with psycopg.connect(database.app_url) as conn:
        return conn.execute("SELECT outcome, detail->>'user', detail->>'via' FROM journal "
                            "WHERE kind = 'check' ORDER BY seq").fetchall()


# --- the shipped configuration ---------------------------------------------------------------------


def test_the_shipped_configuration_passes_freeradius_check():
    env = {**os.environ, "GATEHOUSE_URL": "http://127.0.0.1:8000", "GATEHOUSE_RADIUS_TOKEN": "t"}
    done = subprocess.run([tool("freeradius"), "-XC", "-d", str(RADIUS_CONFIG)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "Configuration appears to be OK" in done.stdout, done.stdout[-3000:]
    assert "rlm_rest" in done.stdout and "start = 0" in done.stdout


def test_the_snippets_fit_a_stock_debian_install(tmp_path):
    """The README's steps for an existing /etc/freeradius/3.0 (its sites kept), on a copy of it: the check passes."""
    raddb = tmp_path / "raddb"
    shutil.copytree("/etc/freeradius/3.0", raddb, symlinks=True)
    conf = raddb / "radiusd.conf"  # the copy is ours, not freerad's: check it as the current user
    conf.write_text(conf.read_text().replace("\tuser = freerad", "#user").replace("\tgroup = freerad", "#group"))
    for part in ("mods-available", "policy.d", "sites-available"):
        shutil.copy(RADIUS_CONFIG / part / "gatehouse", raddb / part / "gatehouse")
    (raddb / "mods-enabled" / "gatehouse").symlink_to("../mods-available/gatehouse")
    (raddb / "sites-enabled" / "gatehouse").symlink_to("../sites-available/gatehouse")
    site = raddb / "sites-available" / "gatehouse"  # beside the stock default site, on its own port
    site.write_text(site.read_text().replace("port = 1812", "port = 1815"))
    default = raddb / "sites-available" / "default"  # and gating the stock site, which checks passwords
    text = default.read_text()
    assert text.count("\nauthorize {\n") == 1
    default.write_text(text.replace("\nauthorize {\n", "\nauthorize {\n\tgatehouse_authorize\n"))
    with open(raddb / "clients.conf", "a") as clients:
        clients.write((RADIUS_CONFIG / "clients.conf").read_text())
    env = {**os.environ, "GATEHOUSE_URL": "http://127.0.0.1:8000", "GATEHOUSE_RADIUS_TOKEN": "t"}
    done = subprocess.run([tool("freeradius"), "-XC", "-d", str(raddb)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "Configuration appears to be OK" in done.stdout, done.stdout[-3000:]
    assert "server gatehouse {" in done.stdout and "port = 1815" in done.stdout


# --- decisions -------------------------------------------------------------------------------------


def test_access_requests_get_gatehouses_decision(database, radius):
    allowed_person(database, "alice")
    lapsed_person(database, "lars")

    alice = radius.send("alice", PASSWORD)
    assert (alice.code, alice.message) == (
        "Access-Accept", "access to vpn is granted and every requirement holds"), alice.output
    lars = radius.send("lars", PASSWORD)
    assert lars.code == "Access-Reject" and lars.message.startswith("Security awareness training lapsed at "), \
        lars.output
    nobody = radius.send("nobody@example.com", PASSWORD)
    assert (nobody.code, nobody.message) == ("Access-Reject", "no such person"), nobody.output
    assert _checks(database) == [("allow", "alice", "radius"), ("deny", "lars", "radius"),
                                 ("deny", "nobody@example.com", "radius")]
    assert "Login incorrect (gatehouse: Security awareness training lapsed at " in radius.log()

    # The README's radtest line (it adds a Message-Authenticator, which clients.conf requires).
    radtest = subprocess.run([tool("radtest"), "alice", PASSWORD, f"127.0.0.1:{radius.port}", "0", SECRET],
                             capture_output=True, text=True, timeout=30)
    assert parse_radclient(radtest.stdout).code == "Access-Accept", radtest.stdout
    # Without a Message-Authenticator the request is dropped, not answered.
    assert radius.send("alice", PASSWORD, message_authenticator=False, timeout=1).code is None


def test_a_refused_gateway_token_rejects_with_the_reason(database, serve, tmp_path):
    allowed_person(database, "alice")
    with RadiusServer.start(tmp_path, gatehouse_url=serve.url, token="not-a-token") as radius:
        reply = radius.send("alice", PASSWORD)
    assert reply.code == "Access-Reject" and reply.message.startswith("unauthenticated: "), reply.output


# --- hostile input ---------------------------------------------------------------------------------


HOSTILE_NAMES = [
    'alice", "resource": "admin',  # breaks out of the JSON string
    "%{User-Password}",  # would be expanded into the body
    "alice%{User-Password}",
    "al ice",
    "alice\\",
    "alice\n",  # PCRE's $ matches before a final newline
    "alice\r\nX-Injected: 1",
    "alice\tx",
    "x" * 129,  # one over the guard's length
]


def test_hostile_user_names_are_rejected_before_gatehouse_and_leak_nothing(database, radius):
    allowed_person(database, "alice")
    for user in HOSTILE_NAMES:  # one server for all: starting Gatehouse is the slow part
        reply = radius.send(user, PASSWORD)
        assert (reply.code, reply.message) == ("Access-Reject", NAME_REFUSED), (user, reply.output)
        assert PASSWORD not in reply.output.split("Received", 1)[1], user
    assert _checks(database) == []  # Gatehouse was never asked
    assert radius.log().count("User-Name refused by the name guard") >= len(HOSTILE_NAMES)


def test_the_longest_name_the_guard_lets_through_reaches_gatehouse(database, radius):
    reply = radius.send("x" * 128, PASSWORD)
    assert (reply.code, reply.message) == ("Access-Reject", "no such person"), reply.output
    assert _checks(database) == [("deny", "x" * 128, "radius")]


def test_a_reason_holding_xlat_syntax_is_not_expanded(database, radius):
    # A grant reason is free text someone typed; FreeRADIUS must not expand %{...} in Gatehouse's answer
    # (rlm_rest's JSON decoder would, whatever a top-level "do_xlat": false says).
    person_id = add_person(database, "sam")
    add_grant(database, person_id, state="suspended", reason="%{User-Password} %{Client-Shortname}")
    add_completion(database, person_id, datetime.now(UTC))
    reply = radius.send("sam", PASSWORD)
    assert reply.code == "Access-Reject", reply.output
    assert reply.message == "access to vpn is suspended (%{User-Password} %{Client-Shortname})"
    assert PASSWORD not in reply.output.split("Received", 1)[1]


# --- fail closed -----------------------------------------------------------------------------------


def test_gatehouse_down_means_reject_until_it_is_back(database, serve, radius, tmp_path):
    allowed_person(database, "alice")
    assert radius.send("alice", PASSWORD).code == "Access-Accept"

    serve.stop()
    down = radius.send("alice", PASSWORD)
    assert (down.code, down.message) == ("Access-Reject", UNAVAILABLE), down.output
    assert "no decision (HTTP none" in radius.log()
    # pool start = 0: a FreeRADIUS started while Gatehouse is down starts, and rejects.
    with RadiusServer.start(tmp_path / "second", gatehouse_url=serve.url, token=radius.env[
            "GATEHOUSE_RADIUS_TOKEN"]) as second:
        assert second.send("alice", PASSWORD).code == "Access-Reject"
        serve.start()  # same port; neither FreeRADIUS is restarted
        assert radius.send("alice", PASSWORD).code == "Access-Accept"
        assert second.send("alice", PASSWORD).code == "Access-Accept"


def test_with_gatehouses_database_down_the_gateway_gets_gatehouses_own_reason(database, serve, radius, pg_superuser):
    """FreeRADIUS's call outlasts GATEHOUSE_DB_TIMEOUT (the default, 5 s), so the reject carries `unavailable`."""
    allowed_person(database, "alice")
    assert radius.send("alice", PASSWORD).code == "Access-Accept"
    dbname = psycopg.conninfo.conninfo_to_dict(database.app_url)["dbname"]
    with psycopg.connect(pg_superuser, autocommit=True) as conn:  # the database goes away under the running service
        conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", (dbname,))
    try:
        # The first request may meet a pooled connection that broke (fast); the next waits the whole
        # GATEHOUSE_DB_TIMEOUT for a new one: both must reach the gateway as Gatehouse's reason.
        for _ in range(2):
            down = radius.send("alice", PASSWORD, timeout=15)
            assert down.code == "Access-Reject", down.output
            assert down.message and down.message.startswith("unavailable: "), down.output
    finally:
        with psycopg.connect(pg_superuser, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')


def test_the_shipped_configuration_drops_root_and_outlasts_the_database_timeout():
    from service.config import Settings

    conf = (RADIUS_CONFIG / "radiusd.conf").read_text()
    assert "\tuser = freerad\n" in conf and "\tgroup = freerad\n" in conf
    rest = (RADIUS_CONFIG / "mods-available" / "gatehouse").read_text()
    timeout = int(re.search(r"^\s*timeout = (\d+)$", rest, re.M).group(1))
    max_request = int(re.search(r"^max_request_time = (\d+)$", conf, re.M).group(1))
    assert Settings().db_timeout < timeout < max_request


# --- settings --------------------------------------------------------------------------------------


def test_without_a_token_it_will_not_start_and_the_config_rejects_everything(tmp_path):
    with StubApi(body=json.dumps({"reply:Reply-Message": "ok"}).encode()) as api:
        with pytest.raises(RuntimeError, match="GATEHOUSE_RADIUS_TOKEN is empty or unset"):
            RadiusServer.start(tmp_path, gatehouse_url=api.url, token="")
        # Started some other way (without check-env.sh), the policy still refuses to call Gatehouse.
        with RadiusServer.start(tmp_path / "direct", gatehouse_url=api.url, token="", wrapped=False) as radius:
            reply = radius.send("alice", PASSWORD)
            assert (reply.code, reply.message) == ("Access-Reject", "gatehouse: RADIUS server not configured")
            assert "GATEHOUSE_URL or GATEHOUSE_RADIUS_TOKEN is not set" in radius.log()
    assert api.requests == []


@pytest.mark.parametrize("env, problem", [
    ({"GATEHOUSE_URL": "", "GATEHOUSE_RADIUS_TOKEN": "t"}, "must start with http"),
    ({"GATEHOUSE_URL": "http://gh/", "GATEHOUSE_RADIUS_TOKEN": "t"}, "must not end with /"),
    ({"GATEHOUSE_URL": 'http://gh/"%{x}', "GATEHOUSE_RADIUS_TOKEN": "t"}, "has characters outside"),
    ({"GATEHOUSE_URL": "http://gh", "GATEHOUSE_RADIUS_TOKEN": "t%{User-Password}"}, "never has"),
])
def test_check_env_refuses_settings_that_would_break_the_config(env, problem):
    done = subprocess.run(["sh", str(CHECK_ENV), "echo", "started"], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 1 and problem in done.stderr and "started" not in done.stdout
    fine = subprocess.run(["sh", str(CHECK_ENV), "echo", "started"], capture_output=True, text=True, timeout=10,
                          env={"PATH": os.environ["PATH"], "GATEHOUSE_URL": "https://gh.example.com:8443",
                               "GATEHOUSE_RADIUS_TOKEN": "Ab-_09"})
    assert (fine.returncode, fine.stdout) == (0, "started\n")


# --- anything but Gatehouse's answer -------------------------------------------------------------------


GOOD = json.dumps({"do_xlat": False, "reply:Reply-Message": "fine"}).encode()


@pytest.mark.parametrize("answer, code, message", [
    (dict(status=200, body=GOOD), "Access-Accept", "fine"),
    (dict(status=401, body=json.dumps({"reply:Reply-Message": "no grant for vpn"}).encode()),
     "Access-Reject", "no grant for vpn"),
    (dict(status=200, body=json.dumps({"reply:Reply-Message": {"value": "per-attribute %{User-Password}",
                                                              "do_xlat": False}}).encode()),
     "Access-Accept", "per-attribute %{User-Password}"),
    (dict(status=200, body=json.dumps({"do_xlat": False, "reply:Reply-Message": "pretty"}, indent=2).encode()),
     "Access-Accept", "pretty"),  # Flask pretty-prints in debug mode
    (dict(status=200, body=json.dumps({"a": '"reply:Reply-Message": "evil',
                                       "reply:Reply-Message": "real"}).encode()),
     "Access-Accept", "real"),  # the key quoted inside an earlier string is not the key
    (dict(status=200, body=b"<html>welcome</html>", content_type="text/html"), "Access-Reject", UNAVAILABLE),
    (dict(status=200, body=b"{}"), "Access-Reject", UNAVAILABLE),
    (dict(status=204), "Access-Reject", UNAVAILABLE),
    (dict(status=302, body=GOOD), "Access-Reject", UNAVAILABLE),
    (dict(status=401, body=b""), "Access-Reject", UNAVAILABLE),
    (dict(status=403, body=GOOD), "Access-Reject", UNAVAILABLE),
    (dict(status=404, body=GOOD), "Access-Reject", UNAVAILABLE),
    (dict(status=500, body=GOOD), "Access-Reject", UNAVAILABLE),
    (dict(status=503, body=GOOD), "Access-Reject", UNAVAILABLE),
    (dict(status=200, body=GOOD, delay=9.0), "Access-Reject", UNAVAILABLE),  # past the 8 s rest timeout
], ids=["200", "401", "200-per-attribute", "200-pretty", "200-key-in-text", "200-html", "200-empty-object", "204",
        "302", "401-no-body", "403", "404", "500", "503", "timeout"])
def test_only_a_200_in_gatehouses_shape_accepts(tmp_path, answer, code, message):
    with StubApi(**answer) as api, RadiusServer.start(tmp_path, gatehouse_url=api.url, token="tok-123") as radius:
        reply = radius.send("alice", PASSWORD)
    assert (reply.code, reply.message) == (code, message), reply.output
    (path, headers, body), = api.requests
    assert path == "/api/v1/access/radius" and headers["Authorization"] == "Bearer tok-123"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"user": "alice", "resource": "vpn"}


# --- the check API through gunicorn ----------------------------------------------------------------


def test_an_over_long_check_query_is_a_json_problem_not_gunicorns_page(database, serve):
    import requests

    headers = {"Authorization": f"Bearer {gateway_token(database)}"}
    url = f"{serve.url}/api/v1/access/check"
    long_value = requests.get(url, params={"user": "a" * 5000, "resource": "vpn"}, headers=headers, timeout=10)
    assert long_value.status_code == 400, long_value.text  # past gunicorn's default 4094: the app's own answer
    assert long_value.headers["Content-Type"] == "application/problem+json"
    assert "user is longer than 256 characters" in long_value.json()["detail"]
    too_long = requests.get(url, params={"user": "a" * 9000, "resource": "vpn"}, headers=headers, timeout=10)
    assert too_long.status_code == 414 and too_long.headers["Content-Type"] == "application/problem+json"
    assert too_long.json()["title"] == "URI Too Long"
    assert _checks(database) == []  # neither reached a decision
