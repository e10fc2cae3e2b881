"""Export 1,000,000 journal rows as JSON Lines and verify the file offline; rows/s and peak memory of each.

    python bench/journal_export.py [--rows 1000000]

Export: the auditor's export path (audit.store.copy_lines: lines PostgreSQL builds, through COPY ... TO STDOUT)
written to a file (the same lines through a server-side cursor, store.stream_lines, and the Entry path,
store.stream + export.jsonl, are measured too, and must write the same bytes); its baseline is the bare streaming
read of the same rows as columns. Verify: service.journal.offline.check_file over the
file (blocks in a pool of one process per CPU), no database; its baseline is reading and json-parsing the same
lines in one process (the one-pass check_lines is measured too). Each runs in its own process, so its peak RSS
(VmHWM) is its own (for verify, the larger of its own and its pool workers'). Also prints the plans of the
auditor's searches at this size. Targets: export >= 100,000 rows/s, verify >= 200,000 rows/s, peak memory < 200 MB.
The ratios (work / baseline) and the load average beside each figure are printed.
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench._pg import bench_database  # noqa: E402
from bench._result import bench_result  # noqa: E402
from bench.journal_verify import fill  # noqa: E402
from service.audit import export, store  # noqa: E402
from service.audit.store import Search  # noqa: E402
from service.journal import offline  # noqa: E402


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _export(url: str, path: str, out) -> None:
    started = time.perf_counter()
    n = 0
    with psycopg.connect(url) as conn, conn.transaction(), open(path, "wb") as f:
        for chunk in store.copy_lines(conn, Search()):
            f.write(chunk)
            n += chunk.count(b"\n")
    out.put((n, time.perf_counter() - started, _peak_mb()))


def _export_again(chunks, suffix: str):
    """An older export path: the same rows through `chunks(conn)`, which must write the export's very bytes."""
    def work(url: str, path: str, out) -> None:
        started = time.perf_counter()
        n = 0
        with psycopg.connect(url) as conn, conn.transaction(), open(path + suffix, "wb") as f:
            for chunk in chunks(conn):
                f.write(chunk)
                n += chunk.count(b"\n")
        assert _sha256(path + suffix) == _sha256(path)  # the same bytes either way
        Path(path + suffix).unlink()
        out.put((n, time.perf_counter() - started, _peak_mb()))
    return work


_export_lines = _export_again(lambda conn: export.jsonl_lines(store.stream_lines(conn, Search())), ".lines")
_export_entries = _export_again(lambda conn: export.jsonl(store.stream(conn, Search())), ".entries")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _bare_read(url: str, path: str, out) -> None:
    started = time.perf_counter()
    n = 0
    with psycopg.connect(url) as conn, conn.transaction(), conn.cursor(name="bare") as cur:
        cur.itersize = 5000
        cur.execute(store._SELECT + store.sql.SQL("true ORDER BY seq"))
        for _ in cur:
            n += 1
    out.put((n, time.perf_counter() - started, _peak_mb()))


def _verify(url: str, path: str, out) -> None:
    started = time.perf_counter()
    result = offline.check_file(path)
    took = time.perf_counter() - started
    assert result.ok, result
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out.put((result.count, took, max(_peak_mb(), children)))


def _verify_one_pass(url: str, path: str, out) -> None:
    started = time.perf_counter()
    with open(path, encoding="utf-8") as f:
        result = offline.check_lines(f)
    assert result.ok, result
    out.put((result.count, time.perf_counter() - started, _peak_mb()))


def _parse_only(url: str, path: str, out) -> None:
    started = time.perf_counter()
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            json.loads(line)
            n += 1
    out.put((n, time.perf_counter() - started, _peak_mb()))


def measure(work, url: str, path: str) -> tuple[int, float, float]:
    out = multiprocessing.get_context("fork").Queue()
    proc = multiprocessing.get_context("fork").Process(target=work, args=(url, path, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def plans(url: str) -> None:
    with psycopg.connect(url) as conn:
        last = store.head(conn)[0]
        for name, q in (("by person", Search(subject="person-42")), ("by kind", Search(kinds=("check",))),
                        ("by reason", Search(reason="training_lapsed:security-awareness")),
                        ("by actor", Search(actor="client:vpn-gw"))):
            started = time.perf_counter()
            deep = store.page(conn, q, before=last // 2)
            took = (time.perf_counter() - started) * 1000
            plan = store.explain(conn, q, before=last // 2).splitlines()
            scans = [line.strip() for line in plan if "Scan" in line]
            print(f"search {name}: a page ({len(deep)} rows) from the middle in {took:.1f} ms; {scans[0]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with bench_database() as (database, _), tempfile.TemporaryDirectory() as tmp:
        took = fill(database.app_url, args.rows)
        print(f"fill: {args.rows:,} rows in {took:.1f} s")
        with psycopg.connect(database.owner_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE journal")
        plans(database.app_url)
        path = str(Path(tmp) / "journal.jsonl")
        results = {}
        for name, work in (("bare read", _bare_read), ("export", _export), ("export via a cursor", _export_lines),
                           ("export via entries", _export_entries),
                           ("parse only", _parse_only), ("verify", _verify), ("verify, one pass", _verify_one_pass)):
            n, secs, peak = results[name] = measure(work, database.app_url, path)
            print(f"{name}: {n:,} rows in {secs:.2f} s = {n / secs:,.0f} rows/s, peak RSS {peak:.0f} MB "
                  f"(load {os.getloadavg()[0]:.2f})")
        size = Path(path).stat().st_size / 2**20
        print(f"export file: {size:.0f} MB; targets: export >= 100,000 rows/s, verify >= 200,000 rows/s, < 200 MB")
        for name, base, floor in (("export", "bare read", 100_000), ("verify", "parse only", 200_000)):
            (n, secs, peak), bare = results[name], results[base]
            bench_result(f"journal {name} (JSON Lines)", ours=f"{n / secs:,.0f} rows/s, {peak:.0f} MB",
                         baseline=f"{bare[0] / bare[1]:,.0f} rows/s {base}", ratio=bare[1] / secs,
                         target=f">= {floor:,} rows/s, < 200 MB", met=n / secs >= floor and peak < 200)
        print(f"ratio export/bare read (rows/s): {results['bare read'][1] / results['export'][1]:.2f}")
        print(f"ratio verify/parse only (rows/s): {results['parse only'][1] / results['verify'][1]:.2f} "
              f"({len(os.sched_getaffinity(0))} CPUs)")


if __name__ == "__main__":
    main()
