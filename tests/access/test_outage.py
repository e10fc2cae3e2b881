"""PostgreSQL crashes under check load and comes back: a real `gatehouse serve`, a load generator on loopback.

During the outage every answer is a deny (503, reason `unavailable`), never an allow; once PostgreSQL is back the
same process answers again within 5 s; every decision a client was given (its decision_id) is in the journal.
"""

import threading
import time

import pytest
import requests

from tests.support.cli import db_env, gatehouse, serving
from tests.support.factories import allowed_person, rows
from tests.support.scim import make_token

CLIENTS = 4
BACK_WITHIN = 5.0  # seconds from PostgreSQL accepting connections again to the service answering


class Load:
    """Threads posting checks in a loop, each answer kept as (sent, received, status, body or error)."""

    def __init__(self, base: str, token: str):
        self.url, self.token = f"{base}/api/v1/access/check", token
        self.answers: list[tuple[float, float, int | None, dict | str]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self):
        with requests.Session() as http:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    r = http.post(self.url, json={"user": "alice", "resource": "vpn"}, timeout=15,
                                  headers={"Authorization": f"Bearer {self.token}"})
                    answer = (r.status_code, r.json())
                except (requests.RequestException, ValueError) as e:
                    answer = (None, f"{type(e).__name__}: {e}")
                self.answers.append((sent, time.monotonic(), *answer))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def between(self, start: float, end: float) -> list:
        """The answers to requests sent at or after start and answered by end."""
        return [a for a in self.answers if a[0] >= start and a[1] <= end]


@pytest.mark.slow
def test_postgresql_stopped_under_load_means_deny_then_answers_again_and_no_decision_is_lost(stoppable, tmp_path):
    database = stoppable.migrated()
    token = make_token(database, "vpn-gw", scopes=("access:check",))
    with serving(database, tmp_path, GATEHOUSE_DB_TIMEOUT="2") as base:
        allowed_person(database, "alice")  # once serve has made the policy's resources
        with Load(base, token) as load:
            time.sleep(2)  # allows, under load
            stoppable.stop()  # pg_ctl stop -m immediate: no shutdown checkpoint, every backend killed
            stopped = time.monotonic()
            time.sleep(8)  # long enough for a pool backing off by doubling to wait well past the return
            restarting = time.monotonic()
            stoppable.start()
            back = time.monotonic()
            time.sleep(BACK_WITHIN + 3)
    answers = load.answers

    errors = [a for a in answers if a[2] is None]
    assert errors == []  # the web process itself never failed a request
    allowed = [a for a in answers if a[3].get("allow") is True]
    assert allowed and all(a[2] == 200 and isinstance(a[3]["decision_id"], int) for a in allowed)
    assert all(a[3].get("allow") is False for a in answers if a[2] != 200)  # anything but a 200 is a deny

    during = load.between(stopped, restarting)  # sent once PostgreSQL was down, answered before it started
    assert during, "no answer while PostgreSQL was down"
    assert {(a[2], a[3]["allow"], a[3]["reasons"][0]["code"], a[3]["decision_id"]) for a in during} == {
        (503, False, "unavailable", None)}

    after = [a for a in answers if a[0] >= back + BACK_WITHIN]
    assert after and {(a[2], a[3]["allow"]) for a in after} == {(200, True)}, after[:3]
    first_back = min(a[1] for a in answers if a[0] >= back and a[2] == 200)
    assert first_back - back <= BACK_WITHIN
    print(f"\n{len(answers)} answers, {len(during)} while down; first allow {first_back - back:.2f} s after the start")

    # Zero lost: each decision_id a client got is a journal row of that decision, and the chain verifies.
    given = sorted(a[3]["decision_id"] for a in answers if a[2] == 200)
    assert len(given) == len(set(given))
    journaled = dict(rows(database, "SELECT seq, outcome FROM journal WHERE kind = 'check' AND seq = ANY(%s)",
                          (given,)))
    assert sorted(journaled) == given and set(journaled.values()) == {"allow"}
    verified = gatehouse("journal", "verify", env=db_env(database))
    assert verified.returncode == 0 and verified.stdout.startswith("OK "), verified.stdout + verified.stderr
