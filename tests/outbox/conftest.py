import psycopg
import pytest

from policies import parse_policy
from service import bootstrap
from service.access.resources import sync_resources
from tests.support.policy import policy_toml, resource


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
