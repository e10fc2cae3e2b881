"""Run every benchmark in bench/, one after the other, and print one table: workload, our figure, baseline, ratio,
target, met or not.

    python bench/run_all.py [--quick] [--only NAME ...] [--logs DIR]

--quick runs each at small sizes (a smoke run of the benches themselves: the figures mean little and the targets,
set for the full sizes, may be missed); without it, each runs at its own default sizes (tens of minutes in all).
Each bench's output goes to DIR/NAME.log; its rows come from the JSON lines it writes to the file named by
GATEHOUSE_BENCH_RESULTS (bench/_result.py), so what it prints is unchanged, its ratio last. A quick run starts
one embedded PostgreSQL that every bench uses (unless GATEHOUSE_BENCH_DATABASE_URL names one). The 1-minute load
average when each bench finished is in the table: on a shared machine, read the figures next to it.
Exit 1 if a bench failed or reported nothing; a missed target is a "no" in the table, not a failure.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._pg import server  # noqa: E402

# name: the arguments of a quick run (the default run passes none)
QUICK = {
    "access_check": ["--seconds", "1", "--connections", "8"],
    "journal_append": ["--seconds", "1", "--writers", "8"],
    "journal_export": ["--rows", "20000"],
    "journal_verify": ["--rows", "20000"],
    "ldap_sync": ["--people", "1000", "--page-size", "100"],
    "outbox": ["--revocations", "100"],
    "reviews": ["--people", "1000", "--reviewers", "100"],
    "scim": ["--users", "50", "--threads", "4", "--lookup-people", "1000"],
    "training_compliance": ["--people", "2000"],
}
COLUMNS = ("bench", "workload", "ours", "baseline", "ratio", "target", "met", "load")


def benches() -> list[str]:
    """Every benchmark script in bench/ (helpers start with an underscore)."""
    return sorted(p.stem for p in HERE.glob("*.py") if not p.name.startswith("_") and p.stem != "run_all")


def run(name: str, args: list[str], logs: Path) -> tuple[list[dict], str | None]:
    """Run one bench; its rows, and why it failed (None if it did not)."""
    results = logs / f"{name}.results.jsonl"
    results.unlink(missing_ok=True)
    env = {**os.environ, "GATEHOUSE_BENCH_RESULTS": str(results)}
    with (logs / f"{name}.log").open("w") as log:
        done = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args], env=env, stdout=log,
                              stderr=subprocess.STDOUT, check=False)
    load = f"{os.getloadavg()[0]:.2f}"
    rows = [{"bench": name, **json.loads(line), "load": load}
            for line in (results.read_text().splitlines() if results.exists() else []) if line.strip()]
    if done.returncode != 0:
        tail = (logs / f"{name}.log").read_text().strip().splitlines()[-1:] or [""]
        return rows, f"exit {done.returncode}: {tail[0][:100]}"
    if not rows:
        return rows, "no results reported"
    return rows, None


def table(rows: list[dict]) -> str:
    """A plain text table, one line per row, columns padded to their widest cell."""
    cells = [COLUMNS] + [tuple(_cell(r, c) for c in COLUMNS) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(row: dict, column: str) -> str:
    value = row.get(column, "")
    if column == "met":
        return "yes" if value is True else "no" if value is False else str(value)
    if column == "ratio" and isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


@contextlib.contextmanager
def _shared_server(quick: bool):
    """A quick run: one embedded PostgreSQL for every bench (each still makes and migrates its own database),
    not one each, whose start and stop cost more than the small workloads. A default run: each bench as alone."""
    if not quick or os.environ.get("GATEHOUSE_BENCH_DATABASE_URL"):
        yield
        return
    with server() as url:
        os.environ["GATEHOUSE_BENCH_DATABASE_URL"] = url
        try:
            yield
        finally:
            del os.environ["GATEHOUSE_BENCH_DATABASE_URL"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every bench")
    parser.add_argument("--only", nargs="+", choices=benches(), metavar="NAME", help="these benches only")
    parser.add_argument("--logs", type=Path, help="where each bench's output goes (default: a new temp dir)")
    args = parser.parse_args()
    logs = args.logs or Path(tempfile.mkdtemp(prefix="gatehouse-bench-all-", dir="/tmp"))
    logs.mkdir(parents=True, exist_ok=True)
    rows, failed = [], []
    with _shared_server(args.quick):
        for name in args.only or benches():
            started = time.monotonic()
            print(f"{name} ...", file=sys.stderr, flush=True)
            got, error = run(name, QUICK.get(name, []) if args.quick else [], logs)
            rows.extend(got)
            if error:
                failed.append(name)
                rows.append({"bench": name, "workload": f"FAILED ({error})", "load": f"{os.getloadavg()[0]:.2f}"})
            print(f"{name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print(f"{'quick' if args.quick else 'default'} sizes; each bench's output in {logs}")
    print(table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
