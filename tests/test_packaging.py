"""Packaging: every Python package is listed for the wheel (an editable install hides a missing one); the hooks."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_package_is_in_the_setuptools_list():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(REPO).parts)
             for root in ("service", "connectors", "policies") for init in (REPO / root).glob("**/__init__.py")}
    assert found, "no packages found"
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"


def test_the_pre_commit_hooks_are_valid_and_call_tools_the_venv_has():
    import subprocess
    import sys

    import yaml  # pre-commit's own dependency

    config = REPO / ".pre-commit-config.yaml"
    done = subprocess.run([Path(sys.executable).with_name("pre-commit"), "validate-config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = [h for repo in yaml.safe_load(config.read_text())["repos"] for h in repo["hooks"]]
    assert {h["id"] for h in hooks} == {"ruff", "lint-imports", "mypy"}
    for hook in hooks:  # each names a tool of the venv tests/run builds: nothing is fetched
        tool = hook["entry"].split()[0]
        assert tool.startswith(".venv/bin/") and Path(sys.executable).with_name(Path(tool).name).exists(), tool
