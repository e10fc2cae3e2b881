"""An admin console under test: the app, an enrolled software key, step-up for one action."""

import dataclasses
import re

import psycopg
import pytest

from service import bootstrap
from service.admins import store as admins
from service.app import create_app
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8080"


def make_app(settings, database, **changes):
    settings = dataclasses.replace(settings, base_url=ORIGIN, **changes)
    services = bootstrap.build(settings, database)
    return create_app(services=services), services


@pytest.fixture
def web(settings, database):
    app, services = make_app(settings, database)
    yield app.test_client()
    services.close()


def new_enrollment(database, email="ada@example.com") -> str:
    with psycopg.connect(database.app_url) as conn:
        admin = admins.admin_by_email(conn, email) or admins.create_admin(conn, email, display_name=None,
                                                                          created_by="test")
        return admins.create_enrollment(conn, admin.id, created_by="test")


def enroll(web, database, key: SoftAuthenticator, email="ada@example.com", **register):
    token = new_enrollment(database, email)
    options = web.post(f"/admin/api/enroll/{token}/begin", headers={"Origin": ORIGIN}).json
    credential = key.register(options, origin=ORIGIN, **register)
    return web.post(f"/admin/api/enroll/{token}/finish", json={"credential": credential, "name": "primary"},
                    headers={"Origin": ORIGIN})


def csrf_of(web) -> str:
    page = web.get("/admin").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def step_up(web, key, action, params, *, use_action=None, use_params=None, endpoint=None, **assert_kw):
    """Get a challenge for (action, params), sign it, post (use_action, use_params)."""
    headers = {"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)}
    options = web.post("/admin/api/challenge", json={"action": action, "params": params}, headers=headers).json
    assertion = key.assert_(options, origin=assert_kw.pop("origin", ORIGIN), **assert_kw)
    target = endpoint or "/admin/api/" + (use_action or action).replace(".", "/")
    body = {"params": params if use_params is None else use_params, "assertion": assertion}
    return web.post(target, json=body, headers=headers), body, headers



@pytest.fixture
def signed_in(web, database):
    key = SoftAuthenticator()
    assert enroll(web, database, key).status_code == 200
    return key
