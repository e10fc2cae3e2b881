"""Verify a 1,000,000-row journal; the baseline is streaming the same rows without checking them.

    python bench/journal_verify.py [--rows 1000000]

Prints the verify time (target <= 10 s for 1,000,000 rows) and, last, the
ratio verify time / bare streaming read time.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench._pg import bench_database  # noqa: E402
from bench._result import bench_result  # noqa: E402
from service import journal  # noqa: E402

FILL = """
INSERT INTO journal (kind, subject, resource, outcome, reasons, detail, actor, policy_version, request_id)
SELECT 'check', 'person-' || (i %% 10000), 'vpn', CASE WHEN i %% 7 = 0 THEN 'deny' ELSE 'allow' END,
       CASE WHEN i %% 7 = 0 THEN '[{"code": "training_lapsed:security-awareness"}]'::jsonb ELSE '[]'::jsonb END,
       jsonb_build_object('n', i), 'client:vpn-gw', 'bench', 'req-' || i
FROM generate_series(%s::int, %s::int) i
"""


def fill(url: str, rows: int, chunk: int = 50_000) -> float:
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        for start in range(1, rows + 1, chunk):
            conn.execute(FILL, (start, min(rows, start + chunk - 1)))
            conn.commit()
            print(f"\r  filled {min(rows, start + chunk - 1):,} rows", end="", file=sys.stderr)
    print(file=sys.stderr)
    return time.perf_counter() - started


def bare_read(url: str) -> tuple[int, float]:
    """The floor: the same canonical-text query, streamed, nothing checked."""
    started = time.perf_counter()
    count = 0
    with psycopg.connect(url) as conn, conn.transaction(), conn.cursor(name="bare") as cur:
        cur.itersize = 20000
        cur.execute(journal.chain._CANONICAL_SELECT, (0,))
        for _ in cur:
            count += 1
    return count, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with bench_database() as (database, _):
        took = fill(database.app_url, args.rows)
        print(f"fill: {args.rows:,} chained rows in {took:.1f} s ({args.rows / took:,.0f}/s, one statement per 50k)")
        count, bare = bare_read(database.app_url)
        print(f"bare streaming read: {count:,} rows in {bare:.2f} s")
        started = time.perf_counter()
        with psycopg.connect(database.app_url) as conn:
            result = journal.verify(conn)
        verify = time.perf_counter() - started
        print(f"verify: OK={result.ok} {result.count:,} rows in {verify:.2f} s (target <= 10 s)")
        limit = 10 * args.rows / 1_000_000
        bench_result("journal verify", ours=f"{verify:.2f} s for {result.count:,} rows",
                     baseline=f"{bare:.2f} s bare read", ratio=verify / bare,
                     target=f"<= {limit:g} s (10 s a million rows)", met=result.ok and verify <= limit)
        print(f"ratio verify/bare read: {verify / bare:.2f}")


if __name__ == "__main__":
    main()
