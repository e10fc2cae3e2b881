"""The policy file in the service: loaded once at start, a bad file stops start-up, versioned, resources synced."""

import hashlib
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from service import bootstrap
from service.access.resources import sync_resources
from service.app import create_app
from service.bootstrap import load_policy
from service.clients import store as clients
from service.config import Settings
from service.errors import ConfigError
from tests.support.cli import db_env, gatehouse
from tests.support.net import free_port, wait_ready
from tests.support.policy import policy_toml, resource

DEFAULT = Path(__file__).resolve().parent.parent / "policies" / "default.toml"

def two_resources(wiki: str) -> str:
    return policy_toml(resources=[resource("vpn", "Corporate VPN", "vpn"), resource("wiki", wiki)])


def _write(tmp_path: Path, text: str, name="policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _resources(database) -> dict[str, tuple[str, str]]:
    with psycopg.connect(database.app_url) as conn:
        return {k: (n, kind) for k, n, kind in conn.execute("SELECT key, name, kind FROM resources")}


@pytest.mark.parametrize("broken, where", [
    (DEFAULT.read_text().replace("grace_days = 14", "grace_days = -1"), "training[0].grace_days: must be between"),
    (DEFAULT.read_text().replace('gates = ["vpn"]', 'gates = ["vnp"]'), "training[0].gates[0]: names no resource"),
    (DEFAULT.read_text().replace("\n[guard]\n", "\n[guard]\nlimit = 3\n"), "guard.limit: unknown key"),
    (DEFAULT.read_text().replace('kind = "vpn"', 'kind = "vpn'), "invalid TOML: "),
])
def test_an_invalid_policy_stops_serve_with_one_line_naming_the_file_and_key(database, tmp_path, broken, where):
    path = _write(tmp_path, broken)
    result = gatehouse("serve", env={**db_env(database), "GATEHOUSE_POLICY_FILE": str(path)}, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert result.stderr.startswith(f"gatehouse: error: {path}: {where}")
    if "TOML" in where:
        assert "line " in result.stderr  # a syntax error names the line instead of a key


def test_explain_with_an_invalid_policy_is_exit_2_too(database, tmp_path):
    path = _write(tmp_path, "[[resources]]\nkey = 'VPN'\n")
    result = gatehouse(
        "access", "explain", "alice", "vpn", env={**db_env(database), "GATEHOUSE_POLICY_FILE": str(path)}
    )
    assert result.returncode == 2 and result.stderr.startswith(f"gatehouse: error: {path}: ")


def test_an_unreadable_policy_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="GATEHOUSE_POLICY_FILE: cannot read"):
        load_policy(tmp_path / "missing.toml")


def test_the_policy_is_loaded_once_and_its_sha256_is_stamped_on_decisions(settings, database, tmp_path):
    text = DEFAULT.read_text() + "\n# a comment changes the bytes, so the version\n"
    path = _write(tmp_path, text)
    services = bootstrap.build(replace(settings, policy_file=path), database)
    try:
        path.write_text("not read again")  # loaded once, at build
        client = create_app(services=services).test_client()
        with psycopg.connect(database.app_url) as conn:
            clients.create(conn, name="gw", scopes=("access:check",), created_by="test")
            token = clients.issue_static_token(conn, "gw").secret
        r = client.get("/api/v1/access/check?user=nobody&resource=vpn", headers={"Authorization": f"Bearer {token}"})
    finally:
        services.close()
    version = hashlib.sha256(text.encode()).hexdigest()
    assert r.status_code == 200 and r.json["policy_version"] == version
    assert version != hashlib.sha256(DEFAULT.read_bytes()).hexdigest()
    with psycopg.connect(database.app_url) as conn:
        assert conn.execute("SELECT policy_version FROM journal WHERE seq = %s",
                            (r.json["decision_id"],)).fetchone()[0] == version


def _start(settings: Settings, database, path: Path) -> None:
    services = bootstrap.build(replace(settings, policy_file=path), database)
    try:
        create_app(services=services)
    finally:
        services.close()


def test_the_policys_resources_are_upserted_at_start_and_never_deleted(settings, database, tmp_path):
    _start(settings, database, _write(tmp_path, two_resources("Wiki")))
    assert _resources(database) == {"vpn": ("Corporate VPN", "vpn"), "wiki": ("Wiki", "tool")}
    _start(settings, database, _write(tmp_path, two_resources("Team wiki")))
    assert _resources(database)["wiki"] == ("Team wiki", "tool")
    with psycopg.connect(database.app_url) as conn:
        updated = conn.execute("SELECT updated_at FROM resources WHERE key = 'wiki'").fetchone()[0]
    _start(settings, database, DEFAULT)  # wiki is no longer in the file: kept, unchanged
    assert _resources(database) == {"vpn": ("Corporate VPN", "vpn"), "wiki": ("Team wiki", "tool")}
    with psycopg.connect(database.app_url) as conn:
        sync_resources(conn, load_policy(DEFAULT))  # an unchanged resource is not rewritten
        assert conn.execute("SELECT updated_at FROM resources WHERE key = 'wiki'").fetchone()[0] == updated


def test_serve_syncs_the_resources_before_it_starts(database, tmp_path):
    path, port = _write(tmp_path, two_resources("Wiki")), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(db_env(database), GATEHOUSE_POLICY_FILE=str(path), GATEHOUSE_PORT=str(port), GATEHOUSE_WORKERS="1")
    exe = Path(sys.executable).with_name("gatehouse")
    proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        assert _resources(database)["wiki"] == ("Wiki", "tool")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
