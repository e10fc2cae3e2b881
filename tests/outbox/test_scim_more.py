"""A SCIM target that manages a group's membership, and one that takes its token by OAuth client credentials
(authlib's client against a token endpoint in front of the real scim2-server)."""

import pytest

from service.access import store as grant_store
from service.outbox.delivery import deliver_due
from tests.support.factories import add_grant, add_person, rows
from tests.support.outbox import change
from tests.support.scimtool import OAuthGate, add_group, members


def test_a_group_target_removes_and_adds_the_member_and_leaves_the_account_active(tool, database, make_services):
    kim, other = tool.add_user("kim"), tool.add_user("lee")
    group = add_group(tool, "GitHub Users", [kim, other])
    services = make_services([{"key": "gh-group", "type": "scim", "resource": "github", "url": tool.url,
                               "token_env": "GH_SCIM_TOKEN", "group": "GitHub Users"}])
    add_grant(database, add_person(database, "kim"), "github")
    assert deliver_due(services)["confirmed"] == 1  # a member already: nothing sent
    change(database, grant_store.revoke, "kim", "github", reason="leaver")
    assert deliver_due(services)["confirmed"] == 1
    assert members(tool, group) == {other}
    assert tool.user(kim)["active"] is True  # the account stays: only this resource's group lost it
    change(database, grant_store.grant, "kim", "github", by="admin:ada")
    assert deliver_due(services)["confirmed"] == 1
    assert members(tool, group) == {kim, other}
    assert rows(database, "SELECT detail->>'op', detail->'answer'->>'remote', detail->'answer'->>'group' "
                          "FROM journal WHERE kind = 'outbound' AND outcome = 'sent' ORDER BY seq") == [
        ("enable", "already", group), ("disable", "patched", group), ("enable", "patched", group)]
    assert rows(database, "SELECT detail->'answer'->>'member' FROM journal WHERE kind = 'outbound' "
                          "AND outcome = 'confirmed' ORDER BY seq") == [("true",), ("false",), ("true",)]


def test_a_missing_group_is_an_error_not_a_success(tool, database, make_services):
    tool.add_user("kim")
    services = make_services([{"key": "gh-group", "type": "scim", "resource": "github", "url": tool.url,
                               "token_env": "GH_SCIM_TOKEN", "group": "No Such Group"}])
    add_grant(database, add_person(database, "kim"), "github")
    assert deliver_due(services)["retry"] == 1
    assert rows(database, "SELECT state, last_error FROM outbox") == [
        ("intent", "0 remote groups have displayName 'No Such Group', not one")]


@pytest.fixture
def gate(tool, monkeypatch):
    monkeypatch.setenv("GH_CLIENT_SECRET", "s3cret")
    server = OAuthGate(tool, "gatehouse", "s3cret")
    yield server
    server.stop()


def oauth_target(gate, **more):
    return {"key": "gh-oauth", "type": "scim", "resource": "github", "url": gate.url, "token_url": gate.url + "/token",
            "client_id": "gatehouse", "client_secret_env": "GH_CLIENT_SECRET", "backoff_seconds": 10, **more}


def test_client_credentials_get_a_token_reuse_it_and_renew_it_on_401(tool, gate, database, make_services):
    remote = tool.add_user("kim")
    services = make_services([oauth_target(gate)])
    add_grant(database, add_person(database, "kim"), "github")
    deliver_due(services)
    change(database, grant_store.revoke, "kim", "github", reason="leaver")
    assert deliver_due(services)["confirmed"] == 1
    assert tool.user(remote)["active"] is False
    assert gate.token_requests == 1  # one token for both deliveries (five requests)
    gate.issued.clear()  # the tool revokes every token early
    change(database, grant_store.grant, "kim", "github", by="admin:ada")
    assert deliver_due(services)["confirmed"] == 1
    assert tool.user(remote)["active"] is True
    assert gate.token_requests == 2


def test_a_refused_client_secret_is_a_failed_attempt_retried_later(tool, gate, database, make_services,
                                                                    monkeypatch):
    remote = tool.add_user("kim", active=False)
    monkeypatch.setenv("GH_CLIENT_SECRET", "wrong")
    services = make_services([oauth_target(gate)])
    add_grant(database, add_person(database, "kim"), "github")
    assert deliver_due(services)["retry"] == 1
    (state, attempts, error), = rows(database, "SELECT state, attempts, last_error FROM outbox")
    assert (state, attempts) == ("intent", 1) and error.startswith(f"token {gate.url}/token: invalid_client")
    assert tool.user(remote)["active"] is False  # nothing reached the tool
    assert gate.token_requests == 1
