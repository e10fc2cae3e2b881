"""No secret in the logs: the stderr of a real `gatehouse serve` and `gatehouse worker`, over a run that issues and
uses client secrets, OAuth tokens, a SCIM bearer token, an enrollment link and review links, holds none of them."""

import re
import time

import pytest
import requests

from tests.support.cli import db_env, gatehouse, serving
from tests.support.net import start_gatehouse, stop_gatehouse
from tests.support.reviews import add_grant, add_person

SCOPES = ("--scope", "scim", "--scope", "access:check", "--scope", "training:write", "--scope", "journal:read")


def _cli(database, *args, base: str) -> str:
    done = gatehouse(*args, env={**db_env(database), "GATEHOUSE_BASE_URL": base})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _secret_after(label: str, text: str) -> str:
    return re.search(rf"^{label}:\s*(\S+)$", text, re.M).group(1)


@pytest.mark.slow
def test_no_secret_reaches_the_logs_of_serve_and_worker(database, tmp_path, smtp):
    secrets: dict[str, str] = {}
    env = {"GATEHOUSE_LOG_LEVEL": "DEBUG"}  # the most a process will ever say
    with serving(database, tmp_path, **env) as base:
        created = _cli(database, "clients", "create", "everything", *SCOPES, base=base)
        client_id, secrets["client secret"] = _client(created)
        rotated = _cli(database, "clients", "rotate", "everything", base=base)
        secrets["rotated client secret"] = _secret_after("client_secret", rotated)
        _cli(database, "clients", "create", "okta", "--scope", "scim", base=base)
        secrets["SCIM static token"] = _cli(database, "clients", "token", "okta", base=base).splitlines()[0]
        enroll = _cli(database, "admin", "enroll", "ada@example.com", base=base).strip().splitlines()[-1]
        secrets["enrollment token"] = enroll.rsplit("/", 1)[1]

        # OAuth: Basic and form credentials, a wrong secret, then the token in use
        for auth, form in (((client_id, secrets["rotated client secret"]), {}),
                           (None, {"client_id": client_id, "client_secret": secrets["rotated client secret"]})):
            got = requests.post(base + "/oauth/token", auth=auth, data={"grant_type": "client_credentials", **form},
                                timeout=10)
            assert got.status_code == 200, got.text
            secrets[f"access token {len(secrets)}"] = got.json()["access_token"]
        wrong = secrets["client secret"]  # the secret before the rotation
        assert requests.post(base + "/oauth/token", auth=(client_id, wrong), data={"grant_type": "client_credentials"},
                             timeout=10).status_code == 401
        bearer = {"Authorization": "Bearer " + list(v for k, v in secrets.items() if k.startswith("access"))[0]}
        assert requests.get(base + "/api/v1/access/check", params={"user": "alice", "resource": "vpn"},
                            headers=bearer, timeout=10).status_code == 200
        scim = {"Authorization": "Bearer " + secrets["SCIM static token"]}
        assert requests.post(base + "/scim/v2/Users", headers=scim, timeout=10, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "zoe@example.com",
            "emails": [{"value": "zoe@example.com", "primary": True}]}).status_code == 201
        assert requests.get(base + "/scim/v2/Users", headers={"Authorization": "Bearer " + wrong[::-1]},
                            timeout=10).status_code == 401

        # the enrollment link: its page and the start of a registration
        assert requests.get(enroll, timeout=10).status_code == 200
        assert requests.post(f"{base}/admin/api/enroll/{secrets['enrollment token']}/begin",
                             headers={"Origin": base}, timeout=10).status_code == 200

        # review links: a campaign, e-mailed by the worker, opened and posted to by the reviewer
        boss = add_person(database, "boss")
        add_grant(database, add_person(database, "alice", manager=boss), "vpn")
        _cli(database, "reviews", "start", "--resources", "vpn", base=base)
        worker_log = tmp_path / "worker.log"
        worker = start_gatehouse("worker", {**db_env(database), **env, "GATEHOUSE_BASE_URL": base,
                                            "GATEHOUSE_SMTP_HOST": "127.0.0.1", "GATEHOUSE_SMTP_PORT": str(smtp.port),
                                            "GATEHOUSE_SMTP_FROM": "gatehouse@example.com"}, worker_log)
        try:
            link = _review_link(smtp, base)
        finally:
            worker_output = stop_gatehouse(worker, worker_log)
        secrets["review token"] = link.rsplit("/", 1)[1]
        assert requests.get(link, timeout=10).status_code == 200
        assert requests.post(link, data={"csrf": "forged"}, headers={"Origin": base}, timeout=10).status_code == 403
    serve_output = (tmp_path / "serve.log").read_text()

    assert "/oauth/token" in serve_output and "/reviews/<token>" in serve_output  # the requests were logged
    assert "/admin/enroll/<token>" in serve_output and "/scim/v2/Users" in serve_output
    assert "mail" in worker_output.lower()
    assert all(len(value) >= 16 for value in secrets.values()), secrets
    leaked = [f"the {name} in the {process} log: " + next(line for line in output.splitlines() if value in line)
              for name, value in secrets.items()
              for process, output in (("serve", serve_output), ("worker", worker_output)) if value in output]
    assert not leaked, "\n".join(leaked)


def _client(created: str) -> tuple[str, str]:
    return _secret_after("client_id", created), _secret_after("client_secret", created)


def _review_link(smtp, base: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in smtp.to("boss@example.com"):
            text = message.message.get_body(preferencelist=("plain",)).get_content()
            found = re.findall(re.escape(base) + r"/reviews/[A-Za-z0-9._-]+", text)
            if found:
                return found[0]
        time.sleep(0.3)
    raise AssertionError("the worker sent no review link")


@pytest.mark.parametrize("line, shown", [
    ("GET /reviews/eyJ.abc-1_x 200", "GET /reviews/<token> 200"),
    ("link http://localhost:8080/reviews/eyJ.abc sent", "link http://localhost:8080/reviews/<token> sent"),
    ("POST /admin/api/enroll/T0k3n/begin", "POST /admin/api/enroll/<token>/begin"),
    ("GET /admin/enroll/T0k3n", "GET /admin/enroll/<token>"),
    ("GET /admin/reviews/2026q4-0101-ab", "GET /admin/reviews/2026q4-0101-ab"),  # a campaign's key is no secret
])
def test_a_link_token_is_never_written(line, shown):
    import logging

    from service.logs import JsonFormatter

    record = logging.LogRecord("gunicorn.error", logging.DEBUG, __file__, 1, line, None, None)
    assert f'"msg": "{shown}"' in JsonFormatter().format(record)
