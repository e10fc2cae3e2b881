"""bench/run_all.py --quick: every bench runs at small sizes and has its rows in the one table."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run_all import COLUMNS, QUICK, benches

ROOT = Path(__file__).resolve().parents[2]


def test_every_bench_has_quick_sizes():
    assert set(benches()) == set(QUICK) and len(QUICK) >= 8


@pytest.mark.slow
def test_quick_run_prints_a_row_per_bench_and_leaves_each_bench_output_as_it_was(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--logs", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("bench ")))
    assert lines[header].split() == list(COLUMNS)
    rows = [line.split()[0] for line in lines[header + 2:]]
    assert set(rows) == set(benches()), done.stdout
    for name in benches():
        reported = [json.loads(line) for line in (tmp_path / f"{name}.results.jsonl").read_text().splitlines()]
        assert reported and all(set(r) == {"workload", "ours", "baseline", "ratio", "target", "met"} for r in reported)
        assert len(reported) == rows.count(name)
        # the human output is unchanged: no RESULT line in it, the ratio still the last thing printed
        log = (tmp_path / f"{name}.log").read_text().strip().splitlines()
        assert "ratio" in log[-1] and not any(line.startswith(("RESULT", "{")) for line in log), log[-3:]
