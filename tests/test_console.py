"""Every console route answers with the framing and content policy headers, signed in or not."""

import pytest

from service.web import SECURITY_HEADERS
from tests.support.admin import ORIGIN

HEADERS = SECURITY_HEADERS


def _console_rules(app):
    """Every route under /admin, whichever domain's blueprint serves it."""
    return [r for r in app.url_map.iter_rules() if r.rule == "/admin" or r.rule.startswith("/admin/")]


def _assert_headers_everywhere(web):
    for rule in _console_rules(web.application):
        path = rule.build({name: "x" for name in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = web.open(path, method=method, headers={"Origin": ORIGIN})
            for name, value in HEADERS.items():
                assert response.headers.get(name) == value, (method, path, response.status_code)


def test_the_console_has_routes(web):
    assert len(_console_rules(web.application)) > 10


def test_every_console_route_sends_the_headers_when_signed_out(web):
    _assert_headers_everywhere(web)


@pytest.mark.usefixtures("signed_in")
def test_every_console_route_sends_the_headers_when_signed_in(web):
    _assert_headers_everywhere(web)
