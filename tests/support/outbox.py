"""Outbox test helpers: the service's parts on a policy with these targets, and a grant change in one transaction."""

import psycopg

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

def change(database, fn, *args, **kwargs):
    """Run a store function on the application role's connection, committed."""
    with psycopg.connect(database.app_url) as conn:
        fn(conn, *args, **kwargs)
