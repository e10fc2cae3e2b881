"""Ending live VPN sessions: a real OpenVPN server's management interface `kill`, re-read by `status 3`; or a
configured command given the name as one argument, never through a shell."""

import psycopg
import pytest

from connectors.outbound import Account, DeliveryError
from connectors.vpn import CommandTarget, OpenVpnTarget
from service.access import store as grant_store
from service.outbox.delivery import deliver_due
from tests.support.factories import add_grant, add_person, rows
from tests.support.openvpn import OpenVpn


@pytest.fixture
def openvpn(tmp_path, monkeypatch):
    monkeypatch.setenv("VPN_MGMT_PASSWORD", "mgmt-pw")
    server = OpenVpn(tmp_path, password="mgmt-pw").start()
    yield server
    server.stop()


def _revoke(database, name):
    with psycopg.connect(database.app_url) as conn:
        grant_store.revoke(conn, name, "vpn", reason="leaver")


def test_a_revocation_kills_the_persons_live_sessions_and_only_theirs(openvpn, database, make_services):
    services = make_services([{"key": "vpn-sessions", "type": "openvpn", "resource": "vpn", "url": openvpn.url,
                               "password_env": "VPN_MGMT_PASSWORD"}])
    for name in ("kim", "lee"):
        add_grant(database, add_person(database, name), "vpn")
    assert deliver_due(services)["confirmed"] == 2  # the grants: nothing to do at a VPN
    kim, lee = openvpn.connect("kim"), openvpn.connect("lee")
    _revoke(database, "kim")
    assert deliver_due(services)["confirmed"] == 1
    assert kim.wait(10) == 0  # the client saw its session end (and exits rather than reconnect)
    assert lee.poll() is None  # lee's session is up still
    assert rows(database, "SELECT detail->'answer'->>'vpn', detail->'answer'->>'answer' FROM journal "
                          "WHERE kind = 'outbound' AND outcome = 'sent' AND detail->>'op' = 'disable'") == [
        ("killed", "SUCCESS: common name 'kim' found, 1 client(s) killed")]
    assert rows(database, "SELECT op, state FROM outbox ORDER BY id")[-1] == ("disable", "confirmed")


def test_no_live_session_is_done_and_a_wrong_password_is_not(openvpn, database, make_services, monkeypatch):
    target = OpenVpnTarget(openvpn.url, password="mgmt-pw")
    assert target.apply("disable", Account("p", "nobody"), idempotency_key="k").detail["vpn"] == "no session"
    assert target.verify("disable", Account("p", "nobody")).detail == {"vpn": "no session"}
    with pytest.raises(DeliveryError, match="refused the password") as e:
        OpenVpnTarget(openvpn.url, password="wrong").apply("disable", Account("p", "kim"), idempotency_key="k")
    assert e.value.permanent


@pytest.mark.parametrize("name", ["kim\nsignal SIGTERM", "kim lee", 'kim"', "", "x" * 129])
def test_a_name_that_could_inject_a_management_command_is_never_sent(openvpn, name):
    lee = openvpn.connect("lee")
    with pytest.raises(DeliveryError, match="not a name a VPN session can be ended by") as e:
        OpenVpnTarget(openvpn.url, password="mgmt-pw").apply("disable", Account("p", name), idempotency_key="k")
    assert e.value.permanent
    assert lee.poll() is None and openvpn.procs[0].poll() is None  # nothing was killed, the server runs


def test_a_command_gets_the_name_as_one_argument_without_a_shell(tmp_path, database, make_services):
    out = tmp_path / "argv"
    script = tmp_path / "end-session"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$#" "$@" > {out}\nprintf "%s" "${{HOME:-unset}}" >> {out}\n')
    script.chmod(0o755)
    services = make_services([{"key": "vpn-cmd", "type": "command", "resource": "vpn",
                               "command": [str(script), "--user"]}])
    add_grant(database, add_person(database, "kim"), "vpn")
    _revoke(database, "kim")
    deliver_due(services)
    deliver_due(services)
    assert out.read_text() == "2\n--user\nkim\nunset"  # two arguments; no environment but PATH
    assert rows(database, "SELECT op, state FROM outbox ORDER BY id") == [("enable", "confirmed"),
                                                                          ("disable", "confirmed")]
    with pytest.raises(DeliveryError, match="not a name") as e:
        CommandTarget([str(script)]).apply("disable", Account("p", "$(touch /tmp/pwned)"), idempotency_key="k")
    assert e.value.permanent


def test_a_failing_command_is_a_failed_attempt_with_its_last_line(tmp_path):
    script = tmp_path / "fail"
    script.write_text("#!/bin/sh\necho 'no such session manager' >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(DeliveryError, match=r"exited 3: no such session manager") as e:
        CommandTarget([str(script)]).apply("disable", Account("p", "kim"), idempotency_key="k")
    assert not e.value.permanent
