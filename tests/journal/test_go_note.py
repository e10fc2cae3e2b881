"""Checkpoints verified by code nobody here wrote: Go's golang.org/x/mod/sumdb/note and sumdb/tlog.

Built offline in GOPATH mode from Debian's golang-go and golang-golang-x-mod-dev (tests/run installs them).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.journal.test_checkpoints import _append, _checkpoint, _event, keyed  # noqa: F401 (a fixture)
from tests.support.cli import gatehouse

GO_SRC = Path(__file__).with_name("go")
GOCODE = Path("/usr/share/gocode")


@pytest.fixture(scope="session")
def checkpointverify(tmp_path_factory) -> Path:
    if not shutil.which("go") or not (GOCODE / "src/golang.org/x/mod/sumdb/note").is_dir():
        pytest.fail("needs Debian golang-go and golang-golang-x-mod-dev (tests/run installs them)")
    out = tmp_path_factory.mktemp("go")
    env = {**os.environ, "GOPATH": f"{GO_SRC}:{GOCODE}", "GO111MODULE": "off", "GOCACHE": str(out / "cache"),
           "GOFLAGS": "", "GOPROXY": "off"}
    subprocess.run(["go", "build", "-o", str(out / "checkpointverify"), "checkpointverify"], cwd=GO_SRC, env=env,
                   check=True, capture_output=True, timeout=600)
    return out / "checkpointverify"


def test_go_verifies_two_checkpoints_and_the_consistency_proof_between_them(database, keyed, checkpointverify,  # noqa: F811
                                                                             tmp_path):
    env, vkey, _ = keyed
    _append(database.app_url, [_event(i) for i in range(5)])
    old = tmp_path / "old"
    old.write_text(_checkpoint(env))
    _append(database.app_url, [_event(i) for i in range(5, 13)])
    new = tmp_path / "new"
    new.write_text(_checkpoint(env))
    sizes = [int(p.read_text().split("\n")[1]) for p in (old, new)]
    proof = json.loads(gatehouse("journal", "consistency", *map(str, sizes), env=env).stdout)["consistency_path"]
    done = subprocess.run([str(checkpointverify), vkey, str(old), str(new), *proof], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"OK gatehouse.test/journal {sizes[0]} {sizes[1]}\n", "")

    wrong = subprocess.run([str(checkpointverify), vkey, str(old), str(new), *proof[1:]], capture_output=True)
    assert wrong.returncode == 1
    forged = tmp_path / "forged"
    forged.write_text(new.read_text().replace(f"\n{sizes[1]}\n", f"\n{sizes[1] + 1}\n", 1))
    refused = subprocess.run([str(checkpointverify), vkey, str(old), str(forged), *proof], capture_output=True,
                             text=True)
    assert (refused.returncode, "invalid signature" in refused.stderr) == (1, True), refused.stderr
