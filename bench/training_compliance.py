"""Training compliance (the auditor's dashboard and training page) with 100,000 people; the time of a page's figures.

    python bench/training_compliance.py [--people 100000]

Each person holds the VPN (which the policy's course gates) and a tool; most completed the course at some point in
the last two years, some never. Prints the time of outlook.compliance (what a page view computes), of the sweep's
full load_standing for comparison, and the plan of the query compliance runs. Target: a page's figures well under
a second at 100,000 people.
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench._pg import bench_database  # noqa: E402
from bench._result import bench_result  # noqa: E402
from policies import training_status  # noqa: E402
from policies.loader import parse_policy  # noqa: E402
from service.training import outlook, store  # noqa: E402

FILL = """
INSERT INTO resources (key, name, kind) VALUES ('vpn', 'Corporate VPN', 'vpn'), ('wiki', 'Wiki', 'tool');
INSERT INTO people (user_name, display_name, source, started_at, department)
SELECT 'user' || i, 'User ' || i, 'manual', now() - interval '3 years', 'dept-' || (i %% 20)
FROM generate_series(1, %(n)s) i;
INSERT INTO grants (person_id, resource_id, state, granted_by)
SELECT p.id, r.id, 'active', 'bench' FROM people p CROSS JOIN resources r;
INSERT INTO training_completions (person_id, course, completed_at, source, source_id)
SELECT p.id, 'security-awareness', now() - make_interval(days => abs(hashtext(p.user_name || k)) %% 730), 'manual',
       p.user_name || '-' || k
FROM people p CROSS JOIN generate_series(1, 2) k WHERE abs(hashtext(p.user_name)) %% 10 <> 0;
"""


def timed(work, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def person_by_person(conn, policy, now) -> dict:
    """The figures as compliance computed them before: the sweep's standing of each person (lateral lookups)."""
    tally: dict = {}
    for standing in store.load_standing(conn):
        held = {g.resource for g in standing.grants}
        requirements = [t for t in policy.training if any(t.gates_resource(k) for k in held)]
        for s in training_status(standing.completions, requirements, now, started_at=standing.started_at,
                                 department=standing.department):
            tally[s.state] = tally.get(s.state, 0) + 1
    return tally


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    args = parser.parse_args()
    default = Path(__file__).resolve().parent.parent / "policies" / "default.toml"
    policy = parse_policy(default.read_bytes(), source=str(default))
    with bench_database("gatehouse_bench_training") as (database, _):
        with psycopg.connect(database.owner_url) as conn:
            for statement in FILL.split(";\n")[:-1]:
                conn.execute(statement, {"n": args.people})
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
        now = datetime.now(UTC)
        with psycopg.connect(database.app_url) as conn:
            courses = outlook.compliance(conn, policy, now)
            c = courses[0]
            print(f"{args.people:,} people: {c.course} {c.counts} ({c.current:,} current)")
            assert person_by_person(conn, policy, now) == {k: v for k, v in c.counts.items() if v}  # the same figures
            took = timed(lambda: outlook.compliance(conn, policy, now))
            print(f"compliance (a page view's figures): {took * 1000:.0f} ms (best of 3; "
                  f"load {os.getloadavg()[0]:.2f})")
            query = timed(lambda: store.load_holdings(conn))
            print(f"  of which the query and its rows (load_holdings): {query * 1000:.0f} ms (best of 3; "
                  f"load {os.getloadavg()[0]:.2f})")
            before = timed(lambda: person_by_person(conn, policy, now), repeat=1)
            print(f"the same figures person by person (the sweep's load_standing, as before): {before * 1000:.0f} ms "
                  f"(load {os.getloadavg()[0]:.2f})")
            plan = conn.execute(psycopg.sql.SQL("EXPLAIN ") + store.compliance_query()).fetchall()
            print("plan of compliance's query:\n  " + "\n  ".join(r[0] for r in plan))
    bench_result(f"training compliance, {args.people:,} people", ours=f"{took * 1000:.0f} ms a view",
                 baseline=f"{before * 1000:.0f} ms person by person", ratio=took / before, target="< 1 s a view",
                 met=took < 1)
    print(f"ratio set-wise / person by person (time): {took / before:.2f}")

if __name__ == "__main__":
    main()
