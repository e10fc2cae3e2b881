"""Chained journal appends (group commit) vs plain single-row INSERTs, 32 writers, same server, same run.

    python bench/journal_append.py [--writers 32] [--seconds 10]

Prints appends/s for each and, last, the ratio chained / plain (target >= 0.8,
and >= 3,000 chained appends/s on a 2-core machine).
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench._pg import bench_database  # noqa: E402
from bench._result import bench_result  # noqa: E402
from service import journal  # noqa: E402
from service.journal import Event, JournalWriter  # noqa: E402

PLAIN_TABLE = """
CREATE TABLE journal_plain (LIKE journal INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
ALTER TABLE journal_plain ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY;
GRANT SELECT, INSERT ON journal_plain TO gatehouse_app;
"""
PLAIN_INSERT = """
INSERT INTO journal_plain (ts, kind, subject, resource, outcome, reasons, detail, actor, policy_version,
                           request_id, prev_hash, hash)
VALUES (now(), %(kind)s, %(subject)s, %(resource)s, %(outcome)s, %(reasons)s, %(detail)s, %(actor)s,
        %(policy_version)s, %(request_id)s, %(prev)s, %(hash)s)
"""


def event(i: int) -> Event:
    return Event(kind="check", outcome="allow", actor="client:vpn-gw", subject=f"person-{i % 10000}",
                 resource="vpn", reasons=({"code": "ok"},), policy_version="bench", request_id=f"r{i}")


def run(writers: int, seconds: float, work) -> tuple[int, list[float]]:
    """Run `work(n, stop, latencies)` on `writers` threads for `seconds`; return total and latencies."""
    stop = threading.Event()
    counts, latencies = [0] * writers, []

    def loop(n):
        counts[n] = work(n, stop, latencies)

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts), latencies


def plain_work(url):
    def work(n, stop, latencies):
        done = 0
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                params = event(n * 10_000_000 + done).params()
                params.update(prev=os.urandom(32), hash=os.urandom(32))
                t = time.perf_counter()
                conn.execute(PLAIN_INSERT, params)
                latencies.append(time.perf_counter() - t)
                done += 1
        return done
    return work


def chained_work(writer):
    def work(n, stop, latencies):
        done = 0
        while not stop.is_set():
            t = time.perf_counter()
            writer.record(event(n * 10_000_000 + done))
            latencies.append(time.perf_counter() - t)
            done += 1
        return done
    return work


def describe(name: str, total: int, seconds: float, latencies: list[float]) -> float:
    rate = total / seconds
    q = statistics.quantiles(latencies, n=100)
    print(f"{name:>8}: {total:>7} rows in {seconds:.0f} s = {rate:8.0f}/s   "
          f"p50 {q[49] * 1000:.1f} ms  p99 {q[98] * 1000:.1f} ms")
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with bench_database() as (database, _):
        with psycopg.connect(database.owner_url) as conn:
            conn.execute(PLAIN_TABLE)
        print(f"{args.writers} writers, {args.seconds:.0f} s each, PostgreSQL at {database.app_url.split('?')[0]}")
        total, lat = run(args.writers, args.seconds, plain_work(database.app_url))
        plain = describe("plain", total, args.seconds, lat)
        writer = JournalWriter(database.app_url)
        total, lat = run(args.writers, args.seconds, chained_work(writer))
        writer.close()
        chained = describe("chained", total, args.seconds, lat)
        with psycopg.connect(database.app_url) as conn:
            check = journal.verify(conn)
        print(f"chain verifies: {check.ok} ({check.count} rows)")
        bench_result(f"journal append, {args.writers} writers", ours=f"{chained:.0f} chained/s",
                     baseline=f"{plain:.0f} plain INSERTs/s", ratio=chained / plain,
                     target="ratio >= 0.8, >= 3,000/s", met=check.ok and chained / plain >= 0.8 and chained >= 3000)
        print(f"ratio chained/plain: {chained / plain:.2f}")


if __name__ == "__main__":
    main()
