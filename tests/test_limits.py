"""Rate limits: a token bucket per (endpoint, address) in memory; a 429 with Retry-After writes nothing."""

import dataclasses

import psycopg
import pytest

from service import bootstrap
from service.app import RATE_LIMITED, create_app
from service.config import load_settings
from service.errors import ConfigError
from service.limits import Limiter, Rate
from tests.support.admin import ORIGIN


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    clock = Clock()
    limiter = Limiter(clock=clock)
    rate = Rate(3, 60)  # one token back every 20 s
    assert [limiter.take(rate, "e", "a") for _ in range(4)] == [0, 0, 0, 20]
    assert limiter.take(rate, "e", "b") == 0 and limiter.take(rate, "f", "a") == 0  # per address, per endpoint
    clock.now += 19
    assert limiter.take(rate, "e", "a") == 1
    clock.now += 1
    assert limiter.take(rate, "e", "a") == 0 and limiter.take(rate, "e", "a") == 20
    clock.now += 3600
    assert [limiter.take(rate, "e", "a") for _ in range(4)] == [0, 0, 0, 20]  # never more than the burst


def test_refused_requests_do_not_drain_the_bucket_further():
    clock = Clock()
    limiter = Limiter(clock=clock)
    rate = Rate(1, 10)
    assert limiter.take(rate, "e", "a") == 0
    for _ in range(100):
        assert limiter.take(rate, "e", "a") == 10
    clock.now += 10
    assert limiter.take(rate, "e", "a") == 0


def test_memory_is_bounded_least_recently_used_first():
    limiter = Limiter(max_keys=100)
    rate = Rate(1, 60)
    for n in range(10_000):
        limiter.take(rate, "e", f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100
    assert limiter.take(rate, "e", "10.0.39.15") == 60  # the last address is still remembered


def test_burst_zero_is_no_limit():
    limiter = Limiter()
    assert all(limiter.take(Rate(0, 1), "e", "a") == 0 for _ in range(1000)) and len(limiter) == 0


@pytest.mark.parametrize("value, expected", [("20/60", Rate(20, 60)), ("0", Rate(0, 1)), ("5/0.5", Rate(5, 0.5))])
def test_the_setting_reads_requests_per_seconds(value, expected):
    assert load_settings({"GATEHOUSE_RATE_LIMIT_SIGNIN": value}).rate_limit_signin == expected


@pytest.mark.parametrize("value", ["20", "x/60", "20/0", "0/60", "20/nan", "-1/60", "20/inf"])
def test_a_bad_setting_is_a_clear_error(value):
    with pytest.raises(ConfigError, match="GATEHOUSE_RATE_LIMIT_TOKEN"):
        load_settings({"GATEHOUSE_RATE_LIMIT_TOKEN": value})


def test_every_limited_endpoint_exists(settings, database):
    services = bootstrap.build(dataclasses.replace(settings, oidc_issuer="http://127.0.0.1:9"), database)
    try:
        endpoints = {rule.endpoint for rule in create_app(services=services).url_map.iter_rules()}
    finally:
        services.close()
    assert set(RATE_LIMITED) <= endpoints  # a renamed view never silently loses its limit


DOORS = [  # (method, path, body, an HTML page?)
    ("POST", "/oauth/token", {"data": {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}},
     False),
    ("GET", "/login", {}, True),
    ("GET", "/auth/callback?code=c&state=s", {}, True),
    ("POST", "/admin/api/login/begin", {"json": {}}, False),
    ("POST", "/admin/api/login/finish", {"json": {}}, False),
    ("GET", "/admin/enroll/not-a-token", {}, True),
    ("POST", "/admin/api/enroll/not-a-token/begin", {"json": {}}, False),
    ("POST", "/admin/api/enroll/not-a-token/finish", {"json": {}}, False),
    ("GET", "/reviews/not-a-token", {}, True),
    ("POST", "/reviews/not-a-token", {"data": {"csrf": "x"}}, True),
]


def _journal_rows(database) -> int:
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute("SELECT count(*) FROM journal").fetchone()[0]


@pytest.mark.parametrize("method, path, body, page", DOORS, ids=[f"{d[0]} {d[1]}" for d in DOORS])
def test_each_door_answers_429_with_retry_after_and_writes_nothing(settings, database, method, path, body, page):
    limited = dataclasses.replace(settings, base_url=ORIGIN, oidc_issuer="http://127.0.0.1:9",
                                  **{name: Rate(2, 60) for name in set(RATE_LIMITED.values())})
    services = bootstrap.build(limited, database)
    try:
        client = create_app(services=services).test_client()
        answers = [client.open(path, method=method, headers={"Origin": ORIGIN}, **body) for _ in range(2)]
        assert all(a.status_code != 429 for a in answers)
        before = _journal_rows(database)
        for _ in range(5):
            refused = client.open(path, method=method, headers={"Origin": ORIGIN}, **body)
            assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 30
        assert _journal_rows(database) == before  # refused before the view: no journal row, no other write
        other = client.open(path, method=method, headers={"Origin": ORIGIN}, environ_base={"REMOTE_ADDR": "10.1.1.1"},
                            **body)
        assert other.status_code != 429  # another address has its own bucket
    finally:
        services.close()
    if page:
        assert refused.mimetype == "text/html" and "Too many requests" in refused.get_data(as_text=True)
    else:
        assert refused.mimetype == "application/problem+json" and refused.json["code"] == "rate_limited"
        assert refused.json["status"] == 429


def test_a_limit_of_zero_lets_every_request_through(settings, database):
    services = bootstrap.build(dataclasses.replace(settings, rate_limit_review=Rate(0, 1)), database)
    try:
        client = create_app(services=services).test_client()
        assert all(client.get("/reviews/not-a-token").status_code == 403 for _ in range(100))
    finally:
        services.close()
