"""The one transaction helper: a database that fails is a 503 on every kind of route, and rows name their request."""

from dataclasses import replace

import psycopg
import pytest

from service import bootstrap, journal
from service.app import create_app
from service.auth import store as auth_store
from service.auth.principal import Principal
from service.db import tx
from service.errors import DatabaseUnavailable
from tests.support.admin import ORIGIN
from tests.support.factories import rows
from tests.support.scim import Scim, make_token


@pytest.fixture
def unreachable(settings, database):
    """Services whose database is gone; one bearer token already verified (in the cache), as after a restart."""
    bad = replace(database, app_url="postgresql://nobody@127.0.0.1:1/none")
    services = bootstrap.build(replace(settings, db_timeout=1.0, token_cache_seconds=60), bad)
    services.tokens.put(auth_store.hash_secret("cached-token"),
                        Principal(kind="client", id="00000000-0000-0000-0000-000000000001", name="okta",
                                  scopes=("scim",)), None)
    yield create_app(services=services).test_client()
    services.close()


def test_a_scim_route_whose_database_fails_answers_a_scim_503(unreachable):
    status, body, r = Scim(unreachable, "cached-token").get("Users")
    assert status == 503 and r.content_type.startswith("application/scim+json")
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "503"


@pytest.mark.parametrize("method, path", [("GET", "/admin"), ("GET", "/admin/access"),
                                          ("POST", "/admin/api/challenge"), ("POST", "/admin/logout")])
def test_a_console_route_whose_database_fails_answers_503(unreachable, method, path):
    unreachable.set_cookie("gatehouse_session", "some-session", domain="localhost")
    r = unreachable.open(path, method=method, json={}, headers={"Origin": ORIGIN})
    assert r.status_code == 503, r.get_data(as_text=True)
    assert r.json["code"] == "unavailable" and r.headers["Retry-After"] == "5"


def test_the_helper_maps_a_pool_timeout_and_rolls_back_what_the_block_did(database):
    from psycopg_pool import ConnectionPool

    with ConnectionPool(database.app_url, min_size=1, max_size=1, timeout=0.2) as pool:
        with pool.connection():  # the only connection is taken: the next checkout times out
            with pytest.raises(DatabaseUnavailable, match="^the thing: "):
                with tx.transaction(pool, what="the thing"):
                    pass
        with pytest.raises(RuntimeError):
            with tx.transaction(pool) as conn:
                journal.append(conn, journal.Event(kind="admin", outcome="ok", actor="test"))
                raise RuntimeError("the block failed")
    with psycopg.connect(database.app_url) as conn:
        assert conn.execute("SELECT count(*) FROM journal WHERE actor = 'test'").fetchone()[0] == 0


def test_journal_rows_name_their_request_and_the_next_request_starts_without_one(client, database):
    scim = Scim(client, make_token(database, "okta"))
    status, body, _ = scim.post("Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                          "userName": "ada@example.com"}, headers={"X-Request-Id": "rid-scim-1"})
    assert status == 201
    found = rows(database, "SELECT request_id FROM journal WHERE kind = 'sync' AND subject = %s", (body["id"],))
    assert found == [("rid-scim-1",)]
    assert tx.current_request_id() is None  # the test client's thread serves the next request with none
    assert journal.Event(kind="admin", outcome="ok", actor="cli").request_id is None
