"""Each bench's results for bench/run_all.py, machine-readable, without changing what the bench prints.

A bench calls bench_result() once per workload it measures; when GATEHOUSE_BENCH_RESULTS names a file (run_all sets
it), one JSON line goes there. Run alone, a bench prints exactly what it did before, its ratio last.
"""

import json
import os


def bench_result(workload: str, *, ours: str, baseline: str, ratio: float, target: str, met: bool) -> None:
    """One row of run_all's table: the figure, its baseline, their ratio, the target and whether it was met."""
    path = os.environ.get("GATEHOUSE_BENCH_RESULTS")
    if not path:
        return
    row = {"workload": workload, "ours": ours, "baseline": baseline, "ratio": round(ratio, 3), "target": target,
           "met": bool(met)}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
