"""Every Python package in the source tree is listed for the wheel (an editable install hides a missing one)."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_package_is_in_the_setuptools_list():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(REPO).parts)
             for root in ("service", "connectors", "policies") for init in (REPO / root).glob("**/__init__.py")}
    assert found, "no packages found"
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"
