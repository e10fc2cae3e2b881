"""Every route the app serves answers with the security headers, from one place (web.add_security_headers)."""

import dataclasses
import re
from pathlib import Path

import pytest

from service import bootstrap
from service import web as service_web
from service.app import create_app
from tests.support.admin import ORIGIN

TEMPLATES = Path(service_web.__file__).parent / "templates"


def _every_route(app):
    """(method, path) for each rule of the URL map and each of its methods, its arguments filled with "x"."""
    for rule in app.url_map.iter_rules():
        path = rule.build({name: "x" for name in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, path


def _assert_headers(client, app, *, https: bool):
    seen = 0
    for method, path in _every_route(app):
        response = client.open(path, method=method, headers={"Origin": ORIGIN})
        where = (method, path, response.status_code)
        for name, value in service_web.SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, where
        assert (response.headers.get("Strict-Transport-Security") == service_web.HSTS) is https, where
        seen += 1
    return seen


def _serve(settings, database, **changes):
    """An app with the OIDC sign-in routes too (an issuer that does not answer: /login is a 502 page)."""
    changes = {"base_url": ORIGIN, "oidc_issuer": "http://127.0.0.1:9", **changes}
    services = bootstrap.build(dataclasses.replace(settings, **changes), database)
    return create_app(services=services), services


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_every_route_sends_the_security_headers(settings, database, https):
    app, services = _serve(settings, database, **({"base_url": "https://gatehouse.example"} if https else {}))
    try:
        assert {"/login", "/auth/callback", "/scim/v2/Users", "/oauth/token", "/reviews/<token>",
                "/static/<path:filename>"} <= {rule.rule for rule in app.url_map.iter_rules()}
        assert _assert_headers(app.test_client(), app, https=https) > 60
    finally:
        services.close()


@pytest.mark.usefixtures("signed_in")
def test_every_route_sends_them_to_a_signed_in_admin(web):
    _assert_headers(web, web.application, https=False)


def test_the_policy_allows_no_inline_script_and_no_framing():
    policy = dict(d.strip().split(" ", 1) for d in service_web.CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in service_web.CONTENT_SECURITY_POLICY


def test_no_template_carries_inline_script_or_event_handlers():
    for template in TEMPLATES.glob("*.html"):
        html = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (template.name, tag)
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), template.name  # a script with a body is inline
        assert not re.search(r"\son[a-z]+\s*=", html), template.name  # onclick= and friends
        assert not re.search(r"\sstyle\s*=|<style\b", html), template.name
