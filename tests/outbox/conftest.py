import psycopg
import pytest

from policies import parse_policy
from service import bootstrap
from service.access.resources import sync_resources
from tests.support.policy import policy_toml, resource
from tests.support.scimtool import TOKEN, ScimTool


def outbox_services(settings, database, targets, **policy):
    """The services with a policy holding these targets, synced to the database as `serve` does at start."""
    text = policy_toml(resources=[resource("vpn", kind="vpn"), resource("github")], targets=targets, **policy)
    policy = parse_policy(text.encode(), source="test.toml")
    with psycopg.connect(database.app_url) as conn:
        sync_resources(conn, policy)
    return bootstrap.build(settings, database, policy=policy)


@pytest.fixture
def make_services(settings, database):
    built = []

    def make(targets):
        built.append(outbox_services(settings, database, targets))
        return built[-1]

    yield make
    for s in built:
        s.close()


@pytest.fixture
def tool(monkeypatch):
    """The downstream tool: a real scim2-server, its token in GH_SCIM_TOKEN."""
    monkeypatch.setenv("GH_SCIM_TOKEN", TOKEN)
    server = ScimTool().start()
    yield server
    server.stop()


def change(database, fn, *args, **kwargs):
    """Run a store function on the application role's connection, committed."""
    with psycopg.connect(database.app_url) as conn:
        fn(conn, *args, **kwargs)
