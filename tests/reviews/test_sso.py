"""A reviewer signed in with SSO (a real OIDC provider process) reaches their review page without the e-mailed
link; with reviews.require_sso the link alone shows the page but cannot decide."""

import dataclasses
import re

import pytest

from tests.support.oidc import sign_in
from tests.support.reviews import item_id, page_form, state, world_for

ORIGIN = {"Origin": "http://localhost:8080"}


@pytest.fixture
def settings(settings, provider):  # noqa: F811
    return dataclasses.replace(settings, oidc_issuer=provider, oidc_client_id="gatehouse",
                               oidc_client_secret="not-a-secret")


def _sso(world, provider, user):  # noqa: F811
    signed = sign_in(world.client, provider, user, {"email": f"{user}@example.com", "email_verified": True})
    assert signed.status_code == 302, signed.text


def test_a_reviewer_signed_in_with_sso_reaches_the_page_without_the_link(world, provider):  # noqa: F811
    world.start()
    assert world.client.get("/reviews").status_code == 401
    _sso(world, provider, "mona")
    assert "/reviews" in world.client.get("/me").text
    mine = world.client.get("/reviews")
    assert mine.status_code == 200 and "Review " in mine.text
    path, = re.findall(r'href="(/reviews/[^"]+)"', mine.text)
    page = world.client.get(path)
    assert page.status_code == 200 and "Alice" in page.text and "Bob" in page.text and "Carl" not in page.text
    done = world.client.post(path, data={**page_form(page.text), "decide": f"{item_id(world, 'bob', 'vpn')}:revoke"},
                             headers=ORIGIN)
    assert "Recorded 1 decision" in done.text and world.grant_state("bob", "vpn")[0] == "revoked"


def test_with_require_sso_the_link_alone_cannot_decide_and_the_reviewers_sso_session_can(
        settings, database, smtp, tmp_path, provider):  # noqa: F811
    world = world_for(settings, database, smtp, tmp_path, require_sso=True)
    try:
        world.start()
        world.deliver()
        link, = world.links_of("mona")
        path = world.path(link)
        page = world.client.get(path)
        assert page.status_code == 200 and "Sign in with your company account" in page.text
        assert 'name="decide"' not in page.text
        form, item = page_form(page.text), item_id(world, "bob", "vpn")
        for who in (None, "boss"):  # nobody signed in; signed in, but as someone else
            if who:
                _sso(world, provider, who)
            before = state(world.database)
            refused = world.client.post(path, data={**form, "decide": f"{item}:revoke"}, headers=ORIGIN)
            assert refused.status_code == 403 and "sign in" in refused.text.lower(), who
            delegated = world.client.post(path, data={"csrf": form["csrf"], "delegate": "boss"}, headers=ORIGIN)
            assert delegated.status_code == 403, who
            assert state(world.database) == before
        world.client.post("/logout", data={"csrf_token": _csrf(world.client)})
        _sso(world, provider, "mona")
        page = world.client.get(path)
        assert 'name="decide"' in page.text
        done = world.client.post(path, data={**page_form(page.text), "decide": f"{item}:revoke"}, headers=ORIGIN)
        assert "Recorded 1 decision" in done.text and world.grant_state("bob", "vpn")[0] == "revoked"
    finally:
        world.services.close()


def _csrf(client) -> str:
    import html

    return html.unescape(re.search(r'name="csrf_token" value="([^"]*)"', client.get("/me").text).group(1))
