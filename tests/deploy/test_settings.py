"""The deploy files and the code agree: every GATEHOUSE_* variable they set is a setting service/config.py reads,
its value is one config.py accepts, and every `gatehouse` command they run exists."""

import dataclasses
from pathlib import Path

import click
import pytest

from service import config
from service.cli import cli
from service.config import load_settings
from tests.support.deploy import (
    DEPLOY,
    compose,
    container_env,
    gatehouse_names,
    manifests,
    objects,
    pod_spec,
    settings_names,
)

# The gateway glue (radius/, vpn/) has GATEHOUSE_URL and GATEHOUSE_*TOKEN* of its own: the hooks' settings, not ours.
DEPLOY_FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and not {"radius", "vpn"} & set(p.parts))
# Files named inside the containers, the VMs: config.py checks they are readable, which they are only there.
PATH_SETTINGS = {"GATEHOUSE_" + f.name.upper() for f in dataclasses.fields(config.Settings)
                 if config._PARSERS.get(f.name) is config._readable_file}


def test_every_gatehouse_variable_the_deploy_files_name_is_a_setting():
    assert len(DEPLOY_FILES) >= 10
    named = {path.relative_to(DEPLOY): gatehouse_names(path.read_text()) for path in DEPLOY_FILES}
    unknown = {str(path): sorted(names - settings_names()) for path, names in named.items() if names - settings_names()}
    assert not unknown
    assert "GATEHOUSE_DATABASE_URL" in set().union(*named.values())


def test_an_invented_variable_would_be_caught():
    assert gatehouse_names("GATEHOUSE_SECRET_KEY: x\nGATEHOUSE_PORT=1") - settings_names() == {"GATEHOUSE_SECRET_KEY"}


def environments() -> dict[str, dict[str, str]]:
    """Each process's GATEHOUSE_* environment as the deploy files give it (plain values only)."""
    found: dict[str, dict[str, str]] = {}
    for name, service in compose()["services"].items():
        if service.get("image") == "gatehouse:local":
            found[f"compose:{name}"] = service["environment"]
    configmaps = objects("ConfigMap")
    for doc in manifests():
        if doc["kind"] in ("Deployment", "Job"):
            for container in pod_spec(doc)["containers"]:
                found[f"kubernetes:{doc['metadata']['name']}"] = container_env(container, configmaps)
    example = (DEPLOY / "systemd" / "gatehouse.env.example").read_text()
    found["systemd"] = dict(ln.split("=", 1) for ln in example.splitlines() if ln and not ln.startswith("#"))
    return {where: {k: v for k, v in env.items() if k.startswith("GATEHOUSE_") and isinstance(v, str)}
            for where, env in found.items()}


@pytest.mark.parametrize("where", sorted(environments()))
def test_config_accepts_every_value_the_deploy_files_set(where):
    env = {k: v for k, v in environments()[where].items() if k not in PATH_SETTINGS}
    settings = load_settings(env)  # a bad value raises ConfigError naming the setting
    assert settings.database_url


def test_a_bad_value_would_be_caught():
    with pytest.raises(config.ConfigError):
        load_settings({"GATEHOUSE_DATABASE_URL": "postgresql://gatehouse_app@db:5432/gatehouse",
                       "GATEHOUSE_SMTP_PORT": "submission"})


def runs(args: list[str]) -> bool:
    """Whether `gatehouse ARGS` names a command of the CLI."""
    command: click.Command = cli
    for arg in args:
        if not isinstance(command, click.Group) or arg not in command.commands:
            return False
        command = command.commands[arg]
    return not isinstance(command, click.Group)


def test_every_gatehouse_command_the_deploy_files_run_exists():
    commands = [s["command"] for s in compose()["services"].values() if s.get("image") == "gatehouse:local"
                and "command" in s]
    commands += [c["args"] for d in manifests() if d["kind"] in ("Deployment", "Job")
                 for c in pod_spec(d)["containers"]]
    for unit in (DEPLOY / "systemd").glob("*.service"):
        (exec_start,) = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
        binary, *args = exec_start.removeprefix("ExecStart=").split()
        assert Path(binary).name == "gatehouse"
        commands.append(args)
    assert len(commands) == 9 and {tuple(c) for c in commands} == {("db", "migrate"), ("serve",), ("worker",)}
    assert all(runs(c) for c in commands), commands
    assert not runs(["db", "migrat"]) and not runs(["db"])
