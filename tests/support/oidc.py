"""A real OpenID Connect provider (oidc-provider-mock) in its own process for the session, and signing in
through it as a browser would."""

import subprocess
import sys
import time
from urllib.parse import quote

import pytest
import requests

from tests.support.net import free_port


@pytest.fixture(scope="session")
def provider(tmp_path_factory):
    """The issuer URL of an oidc-provider-mock process, running for the whole session."""
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port",
                                 str(port)], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(issuer, proc, log)
        yield issuer
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

def _wait_until_up(issuer, proc, log, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"oidc-provider-mock exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if requests.get(issuer + "/.well-known/openid-configuration", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"oidc-provider-mock did not answer within {timeout} s: {log.read_text()[-2000:]}")

def authorize(client, provider, sub, claims, *, form=None):
    """Set the user's claims at the provider, start sign-in, and let the provider answer; the callback URL."""
    requests.put(f"{provider}/users/{quote(sub, safe='')}", json=claims, timeout=5).raise_for_status()
    r = client.get("/login")
    assert r.status_code == 302 and r.location.startswith(provider + "/oauth2/authorize?")
    answer = requests.post(r.location, data=form or {"sub": sub}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]

def sign_in(client, provider, sub, claims):
    return client.get(authorize(client, provider, sub, claims))
