"""Anonymous floods: refusals without a credential are counted in memory, and sign-in challenges need no row.

Each flood is sent through the real app; the journal and the challenge table
are read back as the owner.
"""

import time

import psycopg
import pytest

from service.auth import refusals
from service.limits import Rate
from tests.support.admin import ORIGIN, enroll, make_app
from tests.support.softauthn import SoftAuthenticator

N = 40
MINUTE = 29_000_000 * 60  # a fixed minute (in 2025), as seconds since the epoch


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def flood(settings, database):
    # What a view stores under a flood, with the rate limits (tests/test_limits.py) out of the way
    no_limit = {f"rate_limit_{door}": Rate(0, 1) for door in ("token", "signin", "enroll", "review")}
    app, services = make_app(settings, database, **no_limit)
    clock = Clock(MINUTE + 5)
    services.refusals.clock = clock
    yield app.test_client(), services, clock
    services.close()


def _refused(database) -> list[tuple]:
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute("SELECT kind, actor, reasons, detail FROM journal WHERE outcome = 'refused' "
                            "ORDER BY seq").fetchall()


def _anonymous_flood(client, n=N):
    """n requests without any credential to three guarded routes, from n different addresses."""
    for i in range(n):
        source = {"REMOTE_ADDR": f"192.0.2.{i}"}
        assert client.get("/api/v1/access/check?user=a&resource=vpn", environ_base=source).status_code == 401
        assert client.post("/admin/api/login/begin", environ_base=source).status_code == 403  # no Origin
        assert client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           environ_base=source).status_code == 401


def test_a_flood_without_credentials_is_one_row_per_route_and_minute(flood, database):
    client, services, clock = flood
    _anonymous_flood(client)
    assert _refused(database) == []  # nothing written while the minute runs
    clock.now += 60
    assert services.refusals.flush() == 3  # what the timer does when the minute turns
    rows = _refused(database)
    assert [(kind, actor, detail["route"], detail["count"]) for kind, actor, _, detail in rows] == [
        ("admin", "anonymous", "POST /admin/api/login/begin", N),
        ("admin", "anonymous", "POST /oauth/token", N),
        ("check", "anonymous", "GET /api/v1/access/check", N)]
    for _, _, reasons, detail in rows:
        assert detail["minute"] == "2025-02-19T21:20Z" and detail["what"] == "anonymous"
        assert detail["sources"] == [f"192.0.2.{i}" for i in range(refusals.SAMPLE)]
        assert [r["count"] for r in reasons] == [N] and reasons[0]["code"] in ("forbidden", "unauthenticated",
                                                                             "invalid_client")
    _anonymous_flood(client, 3)  # the next minute: counted apart, written when the services close
    services.close()
    later = _refused(database)[3:]
    assert [(d["route"], d["count"], d["minute"]) for *_, d in later] == [
        ("POST /admin/api/login/begin", 3, "2025-02-19T21:21Z"), ("POST /oauth/token", 3, "2025-02-19T21:21Z"),
        ("GET /api/v1/access/check", 3, "2025-02-19T21:21Z")]


def test_the_timer_writes_the_row_when_the_minute_turns(flood, database):
    client, services, clock = flood
    clock.now = MINUTE + 59.5  # the timer is set for half a second from now
    assert client.get("/api/v1/access/check?user=a&resource=vpn").status_code == 401
    clock.now = MINUTE + 60.5
    deadline = time.monotonic() + 10
    while not _refused(database) and time.monotonic() < deadline:
        time.sleep(0.1)
    (_, _, _, detail), = _refused(database)
    assert (detail["route"], detail["count"]) == ("GET /api/v1/access/check", 1)


@pytest.mark.parametrize("credential", [
    {"headers": {"Authorization": "Bearer wrong"}},
    {"headers": {"Authorization": "Basic Zm9vOmJhcg=="}},
    {"cookie": "stale"},
])
def test_a_refusal_that_carries_a_credential_is_still_one_row_each(flood, database, credential):
    client, services, _ = flood
    if "cookie" in credential:
        client.set_cookie("gatehouse_session", credential["cookie"])
    for _ in range(5):
        r = client.get("/api/v1/access/check?user=a&resource=vpn", headers=credential.get("headers", {}))
        assert r.status_code == 401
    assert len(_refused(database)) == 5  # committed before each answer
    assert all(detail["what"] == "scope:access:check" for *_, detail in _refused(database))
    services.refusals.flush(everything=True)
    assert len(_refused(database)) == 5


def test_a_wrong_client_secret_is_still_one_row_each(flood, database):
    client, _, _ = flood
    for _ in range(3):
        r = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "gh_x",
                                              "client_secret": "nope"})
        assert r.status_code == 401
    assert [actor for _, actor, _, _ in _refused(database)] == ["client:gh_x"] * 3


def _challenges(database) -> int:
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute("SELECT count(*) FROM webauthn_challenges").fetchone()[0]


def _finish(client, key, options, **kw):
    return client.post("/admin/api/login/finish", json={"assertion": key.assert_(options, origin=ORIGIN, **kw)},
                       headers={"Origin": ORIGIN})


def test_a_flood_of_login_begin_stores_nothing_and_sign_in_still_works(flood, database):
    client, services, _ = flood
    key = SoftAuthenticator()
    assert enroll(client, database, key).status_code == 200
    before = _challenges(database)
    for _ in range(N):
        assert client.post("/admin/api/login/begin", headers={"Origin": ORIGIN}).status_code == 200
    assert _challenges(database) == before == 0
    options = client.post("/admin/api/login/begin", headers={"Origin": ORIGIN}).json
    signed_in = _finish(client, key, options)
    assert signed_in.status_code == 200
    assert _challenges(database) == 1  # the used challenge, kept until it expires: single use
    with psycopg.connect(database.owner_url) as conn:
        left = conn.execute("SELECT expires_at - now() FROM webauthn_challenges").fetchone()[0].total_seconds()
    assert 100 < left <= 120
    replay = client.post("/admin/api/login/finish", json={"assertion": key.assert_(options, origin=ORIGIN)},
                         headers={"Origin": ORIGIN})
    assert replay.status_code == 403 and replay.json["code"] == "webauthn_replay"
    with psycopg.connect(database.owner_url) as conn:
        sessions = conn.execute("SELECT count(*) FROM web_sessions").fetchone()[0]
    assert sessions == 2  # enrollment and the one sign-in; the replay made none
    assert [r[2][0]["code"] for r in _refused(database)] == ["webauthn_replay"]


@pytest.mark.parametrize("forgery", ["random", "tampered", "expired", "action_challenge"])
def test_a_sign_in_challenge_we_did_not_sign_is_refused(flood, database, forgery, monkeypatch):
    client, services, _ = flood
    key = SoftAuthenticator()
    assert enroll(client, database, key).status_code == 200
    options = client.post("/admin/api/login/begin", headers={"Origin": ORIGIN}).json
    from service.admins.webauthn import b64, unb64

    if forgery == "random":
        options["challenge"] = b64(bytes(48))
    elif forgery == "tampered":
        raw = bytearray(unb64(options["challenge"]))
        raw[0] ^= 1
        options["challenge"] = b64(bytes(raw))
    elif forgery == "expired":
        monkeypatch.setattr(time, "time", lambda real=time.time: real() + 121)
    else:  # a challenge issued for a step-up is no sign-in challenge
        headers = {"Origin": ORIGIN, "X-CSRF-Token": _csrf(client)}
        options = client.post("/admin/api/challenge", json={"action": "clients.create", "params": {}},
                              headers=headers).json
    r = _finish(client, key, options)
    assert r.status_code == 403 and r.json["code"] in ("webauthn_replay", "webauthn_expired")
    with psycopg.connect(database.owner_url) as conn:
        assert conn.execute("SELECT count(*) FROM web_sessions").fetchone()[0] == 1  # the enrollment's only


def _csrf(client) -> str:
    import re

    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/admin").get_data(as_text=True)).group(1)


def test_a_used_sign_in_challenge_cannot_be_freed_through_another_endpoint(flood, database):
    """The used record is the only thing that makes a signed challenge single-use: nothing else may delete it."""
    client, _, _ = flood
    key = SoftAuthenticator()
    assert enroll(client, database, key).status_code == 200
    options = client.post("/admin/api/login/begin", headers={"Origin": ORIGIN}).json
    assertion = key.assert_(options, origin=ORIGIN, counter_step=0)  # a key whose counter stays 0
    assert client.post("/admin/api/login/finish", json={"assertion": assertion}, headers={"Origin": ORIGIN}
                       ).status_code == 200
    headers = {"Origin": ORIGIN, "X-CSRF-Token": _csrf(client)}
    for endpoint in ("/admin/api/clients/create", "/admin/api/keys/finish"):
        body = {"params": {}, "assertion": assertion, "credential": assertion}
        assert client.post(endpoint, json=body, headers=headers).status_code == 403
    assert _challenges(database) == 1
    again = client.post("/admin/api/login/finish", json={"assertion": assertion}, headers={"Origin": ORIGIN})
    assert again.status_code == 403 and again.json["code"] == "webauthn_replay"
