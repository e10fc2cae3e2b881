"""schemathesis against a real `gatehouse serve`: every operation in /openapi.json, bounded, every check.

No answer is a 5xx, every status, content type, header and body is the one the document declares, with a bearer
token that has every scope (from /oauth/token) and the SCIM client's static token for /scim. The few checks that
tests/support/schemathesis.toml switches off for an operation say why there.
"""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import requests

from service import openapi
from service.auth.principal import SCOPES
from service.clients import store as clients
from tests.support.cli import db_env, gatehouse, serving

CONFIG = Path(__file__).parent / "support" / "schemathesis.toml"
SEED = os.environ.get("GATEHOUSE_FUZZ_SEED", "20261203")  # fixed in CI; set another to explore
EXAMPLES = os.environ.get("GATEHOUSE_FUZZ_EXAMPLES", "20")  # per operation: about a minute on 2 cores


def _tokens(database, base: str) -> dict:
    with psycopg.connect(database.app_url) as conn:
        everything = clients.create(conn, name="fuzz", scopes=SCOPES, created_by="test")
        clients.create(conn, name="scim-pusher", scopes=("scim",), created_by="test")
        scim = clients.issue_static_token(conn, "scim-pusher").secret
    got = requests.post(base + "/oauth/token", data={"grant_type": "client_credentials", "scope": " ".join(SCOPES)},
                        auth=(everything.client.client_id, everything.secret), timeout=10)
    assert got.status_code == 200 and set(got.json()["scope"].split()) == set(SCOPES), got.text
    return {"GATEHOUSE_FUZZ_TOKEN": got.json()["access_token"], "GATEHOUSE_FUZZ_SCIM_TOKEN": scim}


def _schemathesis(base: str, tokens: dict, cwd: Path, *more: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("schemathesis")
    return subprocess.run([str(exe), "--no-color", "--config-file", str(CONFIG), "run", base + "/openapi.json",
                           "--max-examples", EXAMPLES, "--seed", SEED, *more],
                          env={**os.environ, **tokens}, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_every_operation_answers_as_documented_and_never_5xx(database, tmp_path):
    with serving(database, tmp_path, GATEHOUSE_RATE_LIMIT_TOKEN="0") as base:  # the fuzzer asks for many tokens
        run = _schemathesis(base, _tokens(database, base), tmp_path)
    log = (tmp_path / "serve.log").read_text()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    operations = sum(len(methods) for methods in openapi.PATHS.values()) - 1  # less /openapi.json, it was read
    assert f"{operations} selected / {operations} total" in run.stdout  # every operation the document lists
    assert "unhandled error" not in log and "Traceback" not in log, log[-4000:]
    verified = gatehouse("journal", "verify", env=db_env(database))  # the journal is still one good chain
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.slow
def test_a_run_with_a_token_that_does_not_work_fails(database, tmp_path):
    """The run must be able to fail: with no valid token every answer is a 401, and that fails it."""
    with serving(database, tmp_path) as base:
        run = _schemathesis(base, {"GATEHOUSE_FUZZ_TOKEN": "nope", "GATEHOUSE_FUZZ_SCIM_TOKEN": "nope"}, tmp_path,
                            "--max-examples", "2", "--phases", "fuzzing", "--include-path", "/api/v1/journal")
    assert run.returncode != 0 and "Authentication failed" in run.stdout, run.stdout[-3000:]
