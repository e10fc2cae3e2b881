"""deploy/vpn/client-connect.sh against a live `gatehouse serve`: exit 0 only when Gatehouse allows.

The script runs as OpenVPN runs it: no PATH, only common_name and the
settings in the environment, under Debian's /bin/sh (dash) and under bash.
"""

import json
import os
import shutil
import subprocess

import psycopg
import pytest

from tests.support.factories import add_person, allowed_person, lapsed_person
from tests.support.radiusserver import ROOT, StubApi, gateway_token, serving, tool

HOOK = ROOT / "deploy" / "vpn" / "client-connect.sh"
SHELLS = [s for s in ("/bin/dash", "/bin/bash") if os.path.exists(s)]


@pytest.fixture
def serve(database, tmp_path):
    with serving(database, tmp_path) as server:
        yield server


@pytest.fixture
def token_file(database, tmp_path):
    path = tmp_path / "token"
    path.write_text(gateway_token(database) + "\n")  # a trailing newline, as editors leave one
    path.chmod(0o600)
    return path


def hook(common_name: str | None, *, url: str, token_file, shell: str = "/bin/sh", timeout: int = 5,
         **settings) -> subprocess.CompletedProcess:
    """Run the hook with OpenVPN's kind of environment (no PATH)."""
    env = {"GATEHOUSE_URL": url, "GATEHOUSE_TOKEN_FILE": str(token_file), "GATEHOUSE_TIMEOUT": str(timeout),
           **settings}  # settings may override GATEHOUSE_TIMEOUT
    if common_name is not None:
        env["common_name"] = common_name
    tool("curl")  # fails (not skips) when curl is missing
    return subprocess.run([shell, str(HOOK), "/tmp/openvpn-cc-unused"], env=env, capture_output=True, text=True,
                          timeout=timeout + 20)


def _checks(database) -> list[tuple]:
    with psycopg.connect(database.app_url) as conn:
        return conn.execute("SELECT outcome, detail->>'user' FROM journal WHERE kind = 'check' ORDER BY seq").fetchall()


@pytest.mark.parametrize("shell", SHELLS)
def test_exit_0_on_allow_and_1_on_deny(database, serve, token_file, shell):
    allowed_person(database, "alice")
    lapsed_person(database, "lars")
    add_person(database, "norah")  # no grant

    results = {cn: hook(cn, url=serve.url, token_file=token_file, shell=shell)
               for cn in ("alice", "lars", "norah", "nobody@example.com")}
    assert {cn: r.returncode for cn, r in results.items()} == {
        "alice": 0, "lars": 1, "norah": 1, "nobody@example.com": 1}, {cn: r.stderr for cn, r in results.items()}
    for r in results.values():  # one log line each, never the token
        assert len(r.stderr.splitlines()) == 1 and token_file.read_text().strip() not in r.stderr
        assert r.stdout == ""
    assert results["alice"].stderr.startswith("gatehouse client-connect: allowed cn=alice resource=vpn decision=")
    assert "denied cn=lars" in results["lars"].stderr and "lapsed at" in results["lars"].stderr
    assert "denied cn=norah" in results["norah"].stderr  # every reason, in one line
    assert "no grant for vpn; Security awareness training was never completed" in results["norah"].stderr
    assert _checks(database) == [("allow", "alice"), ("deny", "lars"), ("deny", "norah"),
                                 ("deny", "nobody@example.com")]


def test_the_resource_can_be_another_key(database, serve, token_file):
    allowed_person(database, "alice")
    r = hook("alice", url=serve.url, token_file=token_file, GATEHOUSE_RESOURCE="wiki")
    assert r.returncode == 1 and "no such resource: wiki" in r.stderr


def test_service_down_is_not_an_allow(database, serve, token_file):
    allowed_person(database, "alice")
    assert hook("alice", url=serve.url, token_file=token_file).returncode == 0
    serve.stop()
    r = hook("alice", url=serve.url, token_file=token_file)
    assert r.returncode == 2 and "Gatehouse unreachable: connection refused" in r.stderr, r.stderr


MALICIOUS = [
    'alice", "resource": "admin',  # breaks out of the JSON string
    "alice$(touch {marker})",  # command substitution, if anything evaluated it
    "alice`touch {marker}`",
    "alice; touch {marker}",
    "../alice",
    "alice\nX-Injected: 1",
    "al ice",
    "",
    "x" * 129,
]


def test_malicious_common_names_are_refused_before_gatehouse(database, serve, token_file, tmp_path):
    allowed_person(database, "alice")
    marker = tmp_path / "pwned"
    for template in MALICIOUS:
        cn = template.format(marker=marker)
        r = hook(cn, url=serve.url, token_file=token_file)
        assert r.returncode == 2 and "common name empty, too long or with characters outside" in r.stderr, (cn, r)
        assert len(r.stderr.splitlines()) == 1
    r = hook(None, url=serve.url, token_file=token_file)  # common_name not set at all
    assert r.returncode == 2 and "common name empty" in r.stderr
    assert not marker.exists()
    assert _checks(database) == []  # none reached Gatehouse


def test_a_refused_token_or_bad_settings_are_errors(database, serve, token_file, tmp_path):
    allowed_person(database, "alice")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-a-valid-token\n")
    r = hook("alice", url=serve.url, token_file=wrong)
    assert r.returncode == 2 and "no decision from Gatehouse (HTTP 401" in r.stderr, r.stderr
    injected = tmp_path / "injected"
    injected.write_text("tok\nX-Evil: 1\n")
    cases = [
        dict(token_file=injected),  # a header smuggled in through the token file
        dict(token_file=tmp_path / "missing"),
        dict(url="ftp://127.0.0.1/"),
        dict(GATEHOUSE_TIMEOUT="5; rm -rf /"),
        dict(GATEHOUSE_RESOURCE='vpn"'),
    ]
    for case in cases:
        r = hook("alice", **{"url": serve.url, "token_file": token_file, **case})
        assert r.returncode == 2 and r.stderr.startswith("gatehouse client-connect: refused cn=alice: "), (case, r)
    assert _checks(database) == [("refused", None)]  # only the wrong token reached Gatehouse


DENY, ERROR = 1, 2  # the hook's exit codes: OpenVPN refuses the client on both, the log tells them apart


@pytest.mark.parametrize("answer, code, problem", [
    (dict(delay=3.0, body=b'{"allow": true}'), ERROR, "no answer within 1s"),
    (dict(status=503, body=json.dumps({"allow": False, "reasons": [{"code": "unavailable",
                                                                    "text": "the facts could not be read"}]}).encode()),
     ERROR, "no decision from Gatehouse (HTTP 503: the facts could not be read)"),  # fail closed, not a deny
    (dict(status=200, body=b"<html>allow</html>", content_type="text/html"), ERROR,
     "no decision from Gatehouse (HTTP 200"),
    (dict(status=200, body=b'{"allow": "false"}'), ERROR, "no decision from Gatehouse (HTTP 200"),
    (dict(status=302, body=b'{"allow": true}'), ERROR, "no decision from Gatehouse (HTTP 302"),
    (dict(status=403, body=b'{"allow": false}'), ERROR, "no decision from Gatehouse (HTTP 403"),
    (dict(status=200, body=json.dumps({"allow": False, "reasons": [
        {"code": "x", "text": 'says "allow": true'}]}).encode()), DENY, "denied cn=alice"),
    (dict(status=200, body=b'{"allow":false,"reasons":[]}'), DENY, "denied cn=alice"),
])
def test_only_a_200_allow_true_lets_the_client_in(tmp_path, answer, code, problem):
    token = tmp_path / "token"
    token.write_text("tok-123")
    with StubApi(**answer) as api:
        r = hook("alice", url=api.url, token_file=token, timeout=1)
    assert r.returncode == code and problem in r.stderr, (r.returncode, r.stderr)
    (path, headers, body), = api.requests
    assert path == "/api/v1/access/check" and headers["Authorization"] == "Bearer tok-123"
    assert json.loads(body) == {"user": "alice", "resource": "vpn"}


def test_the_hook_is_posix_sh():
    for shell in ("sh", "dash", "bash"):
        if shutil.which(shell):
            done = subprocess.run([shell, "-n", str(HOOK)], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
