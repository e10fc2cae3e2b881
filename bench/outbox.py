"""Outbound enforcement: N revocations queued by the grants trigger and delivered by the outbox to a local SCIM
tool (python-scim's scim2-server), against the same work done directly by a plain HTTP client loop, same run.

    python bench/outbox.py [--revocations 10000]

The tool holds 2·N users: N for Gatehouse (people with an active grant, revoked in one transaction: N outbox
rows), N for the baseline. Gatehouse: the worker's deliver_due until nothing is due (per row: look-up by
`userName eq`, PATCH active=false, the confirming GET, and its two journal rows). Baseline: one loop with
urllib (the client the connector uses), per user: the same look-up, PATCH and confirming GET, nothing recorded.
Both run on one thread. Prints deliveries/s for each and, last, the ratio Gatehouse/baseline (target >= 0.7).
"""

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench._http import free_port, start, stop, wait_for  # noqa: E402
from bench._pg import bench_database  # noqa: E402
from bench._result import bench_result  # noqa: E402

TOKEN = "bench-token"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json",
           "Accept": "application/scim+json"}


def call(url: str, method: str = "GET", body: dict | None = None) -> dict | None:
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=HEADERS),
                                timeout=30) as answer:
        text = answer.read()
        return json.loads(text) if text else None


def fill_tool(base: str, names: list[str]) -> None:
    import requests

    with requests.Session() as session:
        for name in names:
            r = session.post(base + "/Users", json={"schemas": [USER], "userName": name, "active": True},
                             headers=HEADERS)
            assert r.status_code == 201, r.text[:200]


def baseline(base: str, names: list[str]) -> float:
    started = time.perf_counter()
    for name in names:
        query = urllib.parse.urlencode({"filter": f'userName eq "{name}"'})
        user = call(f"{base}/Users?{query}")["Resources"][0]
        call(f"{base}/Users/{user['id']}", "PATCH",
             {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]})
        assert call(f"{base}/Users/{user['id']}")["active"] is False
    return time.perf_counter() - started


def gatehouse(database, base: str, n: int, tmp: Path) -> float:
    from policies import parse_policy
    from service import bootstrap
    from service.access.resources import sync_resources
    from service.config import Settings
    from service.outbox.delivery import deliver_due

    resources = '[[resources]]\nkey = "github"\nname = "GitHub"\nkind = "tool"\n'
    rest = ('[reviews]\ncadence_days = 90\ndue_days = 14\n'
            '[guard]\nmax_deactivation_share = 0.1\nmax_deactivations = 50\n')
    target = (f'[[targets]]\nkey = "tool"\ntype = "scim"\nresource = "github"\nurl = "{base}"\n'
              'token_env = "BENCH_TOOL_TOKEN"\n')
    os.environ["BENCH_TOOL_TOKEN"] = TOKEN
    bare = parse_policy((resources + rest).encode(), source="bench")
    policy = parse_policy((resources + target + rest).encode(), source="bench")
    with psycopg.connect(database.app_url) as conn:
        sync_resources(conn, bare)  # the resource first: the grants below queue nothing
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO people (user_name, source) SELECT 'g' || i, 'manual' FROM generate_series(1, %s) i",
                     (n,))
        conn.execute("INSERT INTO grants (person_id, resource_id, state, granted_by) SELECT p.id, r.id, 'active', "
                     "'bench' FROM people p, resources r WHERE r.key = 'github'")
    with psycopg.connect(database.app_url) as conn:
        sync_resources(conn, policy)
    with psycopg.connect(database.app_url) as conn:  # N revocations, one transaction: N outbox rows
        conn.execute("UPDATE grants SET state = 'revoked', reason = 'bench', updated_at = now()")
    settings = Settings(database_url=database.app_url, database_owner_url=database.owner_url, data_dir=tmp,
                        log_level="WARNING")
    services = bootstrap.build(settings, database, policy=policy)
    try:
        started = time.perf_counter()
        while deliver_due(services)["confirmed"]:
            pass
        seconds = time.perf_counter() - started
    finally:
        services.close()
    with psycopg.connect(database.owner_url) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    assert states == {"confirmed": n}, states
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--revocations", type=int, default=10000)
    n = parser.parse_args().revocations
    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-outbox-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tool = start([str(Path(sys.executable).with_name("scim2-server")), "--hostname", "127.0.0.1", "--port",
                  str(port), "--bearer-token", TOKEN], {}, tmp / "scim2-server.log")
    try:
        wait_for(base + "/ServiceProviderConfig", tool)
        fill_tool(base, [f"g{i}" for i in range(1, n + 1)] + [f"b{i}" for i in range(1, n + 1)])
        with bench_database("gatehouse_bench_outbox") as (database, _superuser):
            ours = gatehouse(database, base, n, tmp)
        theirs = baseline(base, [f"b{i}" for i in range(1, n + 1)])
    finally:
        stop(tool)
    print(f"revocations: {n}")
    print(f"gatehouse outbox : {n / ours:8.0f} deliveries/s ({ours:.1f} s; look-up, PATCH, GET, 2 journal rows)")
    print(f"plain HTTP loop  : {n / theirs:8.0f} deliveries/s ({theirs:.1f} s; look-up, PATCH, GET)")
    bench_result(f"outbox, {n:,} revocations delivered", ours=f"{n / ours:.0f} deliveries/s",
                 baseline=f"{n / theirs:.0f}/s plain HTTP loop", ratio=theirs / ours, target="ratio >= 0.7",
                 met=theirs / ours >= 0.7)
    print(f"ratio gatehouse/plain loop: {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
