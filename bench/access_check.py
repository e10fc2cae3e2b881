"""Access checks through `gatehouse serve` vs a bare Flask hello-world, same gunicorn settings, same run.

    python bench/access_check.py [--seconds 10] [--connections 64]

10,000 people, 5 resources, mixed allow/deny (lapsed, never trained,
inactive, no grant, revoked). wrk (Debian package `wrk`) drives both servers
at full rate; then a fixed-rate open-loop Python generator asks at half the
measured maximum (wrk2 is not packaged) and at 100/s for the p50/p99 there.

The floor is what a check cannot avoid: HTTP (the hello-world's req/s) and the
database work (the same facts query and one durable journal append per
decision through the same group commit, from a bare psycopg loop in two
processes of 8 threads, as gunicorn runs, no HTTP). Combined:
1 / (1/hello + 1/db). Prints checks/s, p50/p99, hello req/s, the database
floor, and last the ratio checks/s / floor (targets: ratio >= 0.7 with every
decision journaled; p99 <= 25 ms at half rate, <= 10 ms at 100/s).
"""

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench._http import free_port, wait_for  # noqa: E402
from bench._pg import bench_database  # noqa: E402
from bench._result import bench_result  # noqa: E402
from policies import decide, parse_policy  # noqa: E402
from service import journal  # noqa: E402
from service.access import facts  # noqa: E402
from service.clients import store as clients  # noqa: E402
from service.config import Settings  # noqa: E402

PEOPLE = 10_000
RESOURCES = ("vpn", "git", "wiki", "ci", "chat")
THREADS = 8  # gunicorn gthread threads per worker, as `gatehouse serve` defaults
WORKERS = 2

POLICY = "".join(f'[[resources]]\nkey = "{k}"\nname = "{k}"\nkind = "{"vpn" if k == "vpn" else "tool"}"\n\n'
                 for k in RESOURCES) + """
[[training]]
course = "security-awareness"
name = "Security awareness training"
validity_days = 365
grace_days = 14
gates = ["vpn", "git"]

[reviews]
cadence_days = 90
due_days = 14

[guard]
max_deactivation_share = 0.1
max_deactivations = 50
"""

# Person i: 5% inactive; 10% trained 2 years ago (lapsed), 10% never (missing), the rest a month ago;
# grants on 3 of the 5 resources, one in 20 of those revoked.
SEED = f"""
INSERT INTO people (user_name, primary_email, employee_number, active, source, started_at)
SELECT format('user%s', i), format('user%s@example.com', i), format('E%s', i), i % 20 <> 7, 'manual',
       now() - interval '3 years'
FROM generate_series(1, {PEOPLE}) i;
INSERT INTO training_completions (person_id, course, completed_at, source, source_id)
SELECT p.id, 'security-awareness',
       now() - CASE WHEN n % 10 = 3 THEN interval '2 years' ELSE interval '30 days' END, 'bench', p.user_name
FROM people p, LATERAL (SELECT substr(p.user_name, 5)::int AS n) x WHERE n % 10 <> 5;
INSERT INTO grants (person_id, resource_id, state, reason, granted_by)
SELECT p.id, r.id, CASE WHEN (n + r.k) % 20 = 0 THEN 'revoked' ELSE 'active' END,
       CASE WHEN (n + r.k) % 20 = 0 THEN 'bench' END, 'bench'
FROM people p, LATERAL (SELECT substr(p.user_name, 5)::int AS n) x,
     (SELECT id, row_number() OVER (ORDER BY key) AS k FROM resources) r
WHERE (n + r.k) % 5 < 3;
"""

WRK_SCRIPT = """
local token, people, resources = "%(token)s", %(people)d, {%(resources)s}
local n = 0
function setup(thread) thread:set("offset", math.random(1, people)) end
function init(args) n = tonumber(offset) or 0 end
function request()
  n = n + 1
  local user, resource = (n * 7919) %% people + 1, resources[n %% #resources + 1]
  local body = string.format('{"user":"user%%d","resource":"%%s"}', user, resource)
  return wrk.format("POST", "/api/v1/access/check",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
"""

HELLO = """
from flask import Flask

app = Flask(__name__)


@app.route("/api/v1/access/check", methods=["GET", "POST"])
def hello():
    return {"hello": "world"}
"""


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def wrk(port: int, script: Path, seconds: float, connections: int) -> dict:
    """Run wrk at full rate; requests/s, p50/p99 in ms and the non-2xx count."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def pct(p):
        value, suffix = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * unit[suffix]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": pct(50), "p99": pct(99),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "non2xx": int(errors.group(1)) if errors else 0}


async def _fixed_rate(port: int, token: str, rate: float, seconds: float, connections: int) -> dict:
    """Open loop: request i is due at start + i/rate; its latency counts from then (no coordinated omission)."""
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies, statuses, start = [], {}, time.perf_counter() + 0.1

    async def one(i: int, due: float) -> None:
        reader, writer = await idle.get()
        user, resource = _request(i)
        body = f'{{"user":"{user}","resource":"{resource}"}}'.encode()
        writer.write(b"POST /api/v1/access/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - due)
        status = int(head.split(b" ", 2)[1])
        statuses[status] = statuses.get(status, 0) + 1
        idle.put_nowait((reader, writer))

    tasks, total = [], int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {"rate": total / elapsed, "p50": q[49] * 1000, "p99": q[98] * 1000, "statuses": statuses}


def _request(n: int) -> tuple[str, str]:
    """The n-th check's (user, resource), as the wrk script and the fixed-rate generator ask."""
    return f"user{n * 7919 % PEOPLE + 1}", RESOURCES[n % len(RESOURCES)]


def _floor_process(url: str, policy_text: str, seconds: float, offset: int, done) -> None:
    """One gunicorn worker's database work without HTTP: THREADS loops of facts query + group-committed append."""
    policy = parse_policy(policy_text.encode(), source="bench")
    writer = journal.JournalWriter(url)  # as bootstrap makes it: the same flushers and batch
    identifiers = Settings().check_identifiers
    counts = [0] * THREADS
    start = threading.Barrier(THREADS + 1)

    def loop(t: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            n = offset + t * 100_003
            start.wait()
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                n += 1
                user, resource = _request(n)
                loaded = facts.load_facts(conn, user, resource, identifiers=identifiers)
                decision = decide(loaded.facts, policy, datetime.now(UTC))
                writer.record(journal.Event(
                    kind="check", outcome="allow" if decision.allow else "deny", actor="client:bench-floor",
                    subject=loaded.person_id, resource=resource,
                    reasons=tuple({"code": r.code, "text": r.text} for r in decision.reasons),
                    detail={"user": user}, policy_version=decision.policy_version))
                counts[t] += 1

    threads = [threading.Thread(target=loop, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    start.wait()
    began = time.time()
    for t in threads:
        t.join()
    done.put((sum(counts), began, time.time()))
    writer.close()


def database_floor(database, policy: Path, seconds: float) -> float:
    """Decisions/s of the bare database work (facts + durable append), WORKERS processes x THREADS threads."""
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Queue()
    procs = [ctx.Process(target=_floor_process, args=(database.app_url, policy.read_text(), seconds, w * 1_000_003,
                                                      done)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    results = [done.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    # from the first loop's start to the last one's end: a process that started late makes the floor lower
    rate = sum(r[0] for r in results) / (max(r[2] for r in results) - min(r[1] for r in results))
    print(f"database floor (facts query + durable journal append, {WORKERS} processes x {THREADS} threads, "
          f"no HTTP, {seconds:.0f} s): {rate:8.0f} decisions/s")
    return rate


def seed(database, tmp: Path) -> tuple[Path, str]:
    """The bench policy file, the people, their grants and training; a gateway client's static token."""
    policy = tmp / "policy.toml"
    policy.write_text(POLICY)
    with psycopg.connect(database.owner_url) as conn:
        for key in RESOURCES:
            conn.execute("INSERT INTO resources (key, name, kind) VALUES (%s, %s, %s)",
                         (key, key, "vpn" if key == "vpn" else "tool"))
        conn.execute(SEED)
        conn.execute("ANALYZE")
    with psycopg.connect(database.app_url) as conn:
        clients.create(conn, name="bench-gw", scopes=("access:check",), created_by="bench")
        token = clients.issue_static_token(conn, "bench-gw").secret
    return policy, token


def serve_gatehouse(database, policy: Path, port: int, tmp: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(GATEHOUSE_DATABASE_URL=database.app_url, GATEHOUSE_DATABASE_OWNER_URL=database.owner_url,
               GATEHOUSE_POLICY_FILE=str(policy), GATEHOUSE_PORT=str(port), GATEHOUSE_WORKERS="2",
               GATEHOUSE_DATA_DIR=str(tmp / "data"))
    exe = Path(sys.executable).with_name("gatehouse")
    log = (tmp / "gatehouse.log").open("w")
    proc = subprocess.Popen([str(exe), "serve", "--threads", str(THREADS)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    wait_for(f"http://127.0.0.1:{port}/readyz", proc)
    return proc


def serve_hello(port: int, tmp: Path) -> subprocess.Popen:
    """A bare Flask app under the gunicorn settings `gatehouse serve` uses (service/cli.py _Gunicorn)."""
    (tmp / "hello.py").write_text(HELLO)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--chdir", str(tmp), "-b", f"127.0.0.1:{port}",
                             "-w", "2", "-k", "gthread", "--threads", str(THREADS), "--keep-alive", "5",
                             "--graceful-timeout", "10", "-t", "60", "--log-level", "warning", "hello:app"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/api/v1/access/check", proc)
    return proc


def hello_world(port: int, script: Path, args, tmp: Path) -> dict:
    hello = serve_hello(port, tmp)
    try:
        base = wrk(port, script, args.seconds, args.connections)
    finally:
        stop(hello)
    print(f"hello-world (Flask, gunicorn gthread 2 workers x {THREADS} threads): {base['rate']:8.0f} req/s  "
          f"p50 {base['p50']:.1f} ms  p99 {base['p99']:.1f} ms")
    return base


def measure(args, database, tmp: Path) -> None:
    policy, token = seed(database, tmp)
    script = tmp / "check.lua"
    script.write_text(WRK_SCRIPT % {"token": token, "people": PEOPLE,
                                    "resources": ", ".join(f'"{r}"' for r in RESOURCES)})
    before = hello_world(free_port(), script, args, tmp)
    server = serve_gatehouse(database, policy, port := free_port(), tmp)
    try:
        full = wrk(port, script, args.seconds, args.connections)
        print(f"checks, full rate (wrk -t2 -c{args.connections}, {args.seconds:.0f} s): {full['rate']:8.0f} checks/s  "
              f"p50 {full['p50']:.1f} ms  p99 {full['p99']:.1f} ms  non-2xx {full['non2xx']}")
        fixed = [asyncio.run(_fixed_rate(port, token, rate, args.seconds, args.connections))
                 for rate in (full["rate"] / 2, 100.0)]
        for name, run in zip((f"half rate {full['rate'] / 2:.0f}/s", "100/s"), fixed, strict=True):
            print(f"checks, fixed {name} (open loop, {args.seconds:.0f} s): achieved {run['rate']:.0f}/s  "
                  f"p50 {run['p50']:.1f} ms  p99 {run['p99']:.1f} ms  statuses {run['statuses']}")
    finally:
        stop(server)
    after = hello_world(free_port(), script, args, tmp)  # before and after: the baseline brackets the checks
    report_journal(database, full["requests"] - full["non2xx"] + sum(r["statuses"].get(200, 0) for r in fixed))
    floor_db = database_floor(database, policy, args.seconds)
    hello = (before["rate"] + after["rate"]) / 2
    floor = 1 / (1 / hello + 1 / floor_db)
    half, hundred = fixed
    bench_result("access check, full rate", ours=f"{full['rate']:.0f} checks/s",
                 baseline=f"floor {floor:.0f}/s (hello {hello:.0f}, database {floor_db:.0f})",
                 ratio=full["rate"] / floor, target="ratio to floor >= 0.7", met=full["rate"] / floor >= 0.7)
    bench_result("access check, half of full rate", ours=f"p99 {half['p99']:.1f} ms",
                 baseline=f"p50 {half['p50']:.1f} ms", ratio=half["p99"] / half["p50"], target="p99 <= 25 ms",
                 met=half["p99"] <= 25)
    bench_result("access check, 100/s", ours=f"p99 {hundred['p99']:.1f} ms", baseline=f"p50 {hundred['p50']:.1f} ms",
                 ratio=hundred["p99"] / hundred["p50"], target="p99 <= 10 ms", met=hundred["p99"] <= 10)
    print(f"floor 1 / (1/hello {hello:.0f} + 1/database {floor_db:.0f}): {floor:.0f}/s; "
          f"checks/s / hello req/s: {full['rate'] / hello:.2f}")
    print(f"ratio checks/s / floor: {full['rate'] / floor:.2f}")


def report_journal(database, answered: int) -> None:
    """Every 200 answer has its committed row (rows >= answers: wrk stops counting with requests in flight)."""
    with psycopg.connect(database.app_url) as conn:
        rows = conn.execute("SELECT count(*), count(*) FILTER (WHERE outcome = 'allow') FROM journal "
                            "WHERE kind = 'check'").fetchone()
        durable = conn.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit')").fetchone()
    with psycopg.connect(database.app_url) as conn:
        verified = journal.verify(conn)
    print(f"journal: {rows[0]} check rows ({rows[1]} allow) for {answered} answers counted; chain verifies "
          f"{verified.ok}; fsync={durable[0]} synchronous_commit={durable[1]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-access-", dir="/tmp"))
    try:
        with bench_database("gatehouse_bench_access") as (database, _):
            measure(args, database, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
