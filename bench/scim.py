"""An Okta-style SCIM run against `gatehouse serve` (gunicorn, real PostgreSQL) and against
python-scim's in-memory reference server (scim2-server), same requests, same run.

    python bench/scim.py [--users 10000] [--threads 8] [--lookup-people 100000]

Phases, each timed on both servers: (a) check-then-create (GET ?filter=userName eq, then
POST), (b) PATCH deactivation. Then, on Gatehouse alone, `userName eq` lookups with
--lookup-people people stored. Prints ops/s per phase and, last, the ratio of Gatehouse's
throughput to the reference server's over (a)+(b). Targets: ratio >= 1.0; lookup p50 <= 5 ms.
"""

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench._http import free_port, gatehouse_exe, quantiles, run_parallel, start, stop, wait_for  # noqa: E402
from bench._result import bench_result  # noqa: E402

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
HEADERS = {"Content-Type": "application/scim+json"}


def okta_user(i: int) -> dict:
    return {"schemas": [USER], "userName": f"user{i}@example.com", "externalId": f"00u{i:08d}",
            "name": {"givenName": "Bench", "familyName": f"User{i}"}, "active": True, "groups": [],
            "emails": [{"primary": True, "value": f"user{i}@example.com", "type": "work"}], "password": "x"}


def phases(base: str, token: str, users: int, threads: int) -> dict:
    auth = {**HEADERS, "Authorization": f"Bearer {token}"}
    ids = {}

    def check_then_create(session, i):
        r = session.get(f"{base}/Users", params={"filter": f'userName eq "user{i}@example.com"',
                                                  "startIndex": 1, "count": 100}, headers=auth)
        assert r.status_code == 200 and r.json()["totalResults"] == 0, r.text[:200]
        r = session.post(f"{base}/Users", json=okta_user(i), headers=auth)
        assert r.status_code == 201, r.text[:300]
        ids[i] = r.json()["id"]

    def deactivate(session, i):
        r = session.patch(f"{base}/Users/{ids[i]}", json={"schemas": [PATCH], "Operations": [
            {"op": "replace", "value": {"active": False}}]}, headers=auth)
        assert r.status_code in (200, 204), r.text[:300]  # the reference server answers 204

    results = {}
    for name, worker in (("check-then-create", check_then_create), ("PATCH deactivate", deactivate)):
        seconds, latencies = run_parallel(list(range(users)), worker, threads)
        p50, p99 = quantiles(latencies)
        results[name] = (users / seconds, p50, p99, seconds)
    return results


def run_gatehouse(args, tmp: Path) -> tuple[dict, tuple[float, float]]:
    port = free_port()
    env = {"GATEHOUSE_DATA_DIR": str(tmp / "gh"), "GATEHOUSE_PORT": str(port), "GATEHOUSE_WORKERS": "2",
           "GATEHOUSE_LOG_LEVEL": "WARNING"}
    proc = start([gatehouse_exe(), "serve"], env, tmp / "gatehouse.log")
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz", proc)
        run = lambda *a: subprocess.run([gatehouse_exe(), *a], env={**__import__("os").environ, **env},  # noqa: E731
                                        capture_output=True, text=True, check=True).stdout
        run("clients", "create", "okta", "--scope", "scim")
        token = run("clients", "token", "okta").strip()
        base = f"http://127.0.0.1:{port}/scim/v2"
        results = phases(base, token, args.users, args.threads)
        lookup = lookups(base, token, env, args)
    finally:
        stop(proc)
    return results, lookup


def lookups(base: str, token: str, env: dict, args) -> tuple[float, float]:
    """Fill to --lookup-people people with SQL, then time single `userName eq` GETs."""
    from service import db
    from service.db import lifecycle

    database = db.embedded(Path(env["GATEHOUSE_DATA_DIR"]), "gatehouse_app")
    try:
        return _timed_lookups(base, token, database, args)
    finally:  # leave before the temporary directory goes, so the last holder stops the postmaster
        lifecycle.leave((Path(env["GATEHOUSE_DATA_DIR"]) / "postgres").absolute())


def _timed_lookups(base: str, token: str, database, args) -> tuple[float, float]:
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO people (user_name, given_name, family_name, primary_email, emails, source) "
                     "SELECT 'filler' || i || '@example.com', 'F', 'P' || i, 'filler' || i || '@example.com', "
                     "'[]', 'scim' FROM generate_series(1, %s) i", (max(0, args.lookup_people - args.users),))
        conn.execute("ANALYZE people")
        conn.execute("ANALYZE person_logins")  # userName eq goes through the login key's index (sql/013)
        total = conn.execute("SELECT count(*) FROM people").fetchone()[0]
    names = [f"filler{random.randint(1, max(1, args.lookup_people - args.users))}@example.com" for _ in range(1000)]
    names = [n.upper() if i % 2 else n for i, n in enumerate(names)]  # one name in any case: the login key
    auth = {"Authorization": f"Bearer {token}"}

    def lookup(session, name):
        r = session.get(f"{base}/Users", params={"filter": f'userName eq "{name}"'}, headers=auth)
        assert r.status_code == 200 and r.json()["totalResults"] == 1

    _, latencies = run_parallel(names, lookup, 1)
    p50, p99 = quantiles(latencies)
    print(
        f"gatehouse userName eq lookups with {total:,} people: p50 {p50:.2f} ms  p99 {p99:.2f} ms (target p50 <= 5 ms)"
    )
    return p50, p99


def run_reference(args, tmp: Path) -> dict:
    port, token = free_port(), "bench-token"
    exe = str(Path(sys.executable).with_name("scim2-server"))
    proc = start([exe, "--port", str(port), "--hostname", "127.0.0.1", "--bearer-token", token], {},
                 tmp / "reference.log")
    try:
        wait_for(f"http://127.0.0.1:{port}/v2/ServiceProviderConfig", proc,
                 headers={"Authorization": f"Bearer {token}"})
        return phases(f"http://127.0.0.1:{port}/v2", token, args.users, args.threads)
    finally:
        stop(proc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--lookup-people", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-scim-", dir="/tmp"))
    try:
        ours, (p50, _) = run_gatehouse(args, tmp)
        theirs = run_reference(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in ours:
        for label, r in (("gatehouse", ours[name]), ("scim2-server", theirs[name])):
            print(f"{name:>18} {label:>12}: {r[0]:8.0f} ops/s  p50 {r[1]:6.2f} ms  p99 {r[2]:6.2f} ms")
    total = 2 * args.users
    ratio = (total / sum(r[3] for r in ours.values())) / (total / sum(r[3] for r in theirs.values()))
    rates = [total / sum(r[3] for r in side.values()) for side in (ours, theirs)]
    bench_result(f"SCIM create + deactivate, {args.users:,} users", ours=f"{rates[0]:.0f} ops/s",
                 baseline=f"{rates[1]:.0f} ops/s scim2-server", ratio=ratio, target="ratio >= 1.0", met=ratio >= 1.0)
    bench_result(f"SCIM userName eq lookup, {args.lookup_people:,} people", ours=f"p50 {p50:.2f} ms", baseline="-",
                 ratio=p50 / 5, target="p50 <= 5 ms", met=p50 <= 5)
    print(f"ratio gatehouse/scim2-server throughput: {ratio:.2f}")


if __name__ == "__main__":
    main()
