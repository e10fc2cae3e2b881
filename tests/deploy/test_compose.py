"""deploy/compose.yaml: valid against the Compose Specification (check-jsonschema's bundled schema), and the
system it describes: two web replicas behind the proxy, a worker, migrations once and first, the owner's URL
only where migrations run."""

import subprocess
import sys
from pathlib import Path

import yaml

from service.db.pool import role_of
from tests.support.deploy import DEPLOY, OWNER_URL, compose

CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_compose_is_valid_against_the_compose_specification():
    done = check(DEPLOY / "compose.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_check_refuses_a_broken_file(tmp_path):
    broken = compose()
    broken["services"]["web1"]["depends_on"] = {"migrate": {"condition": "when_it_feels_like_it"}}
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    done = check(tmp_path / "compose.yaml")
    assert done.returncode == 1 and "when_it_feels_like_it" in done.stdout, done.stdout + done.stderr


def test_two_web_replicas_behind_the_proxy_and_a_worker_after_the_migrations():
    services = compose()["services"]
    web = [name for name, s in services.items() if s.get("command") == ["serve"]]
    assert sorted(web) == ["web1", "web2"]
    assert [name for name, s in services.items() if s.get("command") == ["worker"]] == ["worker"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in web + ["worker"]:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    caddyfile = (DEPLOY / "compose" / "Caddyfile").read_text()
    assert "reverse_proxy web1:8080 web2:8080" in caddyfile and "health_uri /readyz" in caddyfile
    assert {"postgres", "openldap", "mailpit", "proxy"} <= set(services)


def test_only_the_migrations_service_gets_the_owners_url():
    services = compose()["services"]
    holders = [name for name, s in services.items() if OWNER_URL in s.get("environment", {})]
    assert holders == ["migrate"]


def test_the_roles_the_services_log_in_as_are_the_ones_postgres_is_given():
    services = compose()["services"]
    initdb = (DEPLOY / "compose" / "initdb.sql").read_text()
    migrate = services["migrate"]["environment"]
    assert f"CREATE DATABASE gatehouse OWNER {role_of(migrate[OWNER_URL])};" in initdb
    for name, service in services.items():
        url = service.get("environment", {}).get("GATEHOUSE_DATABASE_URL")
        if url:
            assert f"CREATE ROLE {role_of(url)} LOGIN" in initdb, name
            assert role_of(url) != role_of(migrate[OWNER_URL]), name
    for secret in compose()["secrets"].values():
        assert (DEPLOY / secret["file"]).is_file()
