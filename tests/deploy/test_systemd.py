"""deploy/systemd/: the web and worker units pass `systemd-analyze verify` (the only complaint allowed: the
gatehouse binary is not installed at /opt/gatehouse on this machine), and keep the owner's URL out."""

import shutil
import subprocess
from pathlib import Path

from tests.support.deploy import DEPLOY, OWNER_URL

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
NOT_INSTALLED_HERE = "Command /opt/gatehouse/bin/gatehouse is not executable"


def complaints(units: list[Path]) -> list[str]:
    """What systemd-analyze says about these unit files (lines about other units on this machine dropped)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian package systemd) is needed"
    done = subprocess.run([analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=60)
    names = [u.name for u in units]
    return [ln for ln in (done.stdout + done.stderr).splitlines()
            if any(n in ln for n in names) and NOT_INSTALLED_HERE not in ln]


def test_the_units_verify():
    assert [u.name for u in UNITS] == ["gatehouse-web.service", "gatehouse-worker.service"]
    assert complaints(UNITS) == []


def test_a_broken_unit_would_be_caught(tmp_path):
    broken = tmp_path / "gatehouse-web.service"
    broken.write_text(UNITS[0].read_text().replace("Restart=on-failure", "Restart=sometimes"))
    assert any("sometimes" in line for line in complaints([broken]))


def test_the_units_read_one_environment_file_without_the_owners_url():
    for unit in UNITS:
        text = unit.read_text()
        assert "EnvironmentFile=/etc/gatehouse/gatehouse.env" in text
        assert "User=gatehouse" in text and "RestartPreventExitStatus=2" in text
    example = (DEPLOY / "systemd" / "gatehouse.env.example").read_text()
    assert OWNER_URL not in [ln.split("=", 1)[0] for ln in example.splitlines()]
