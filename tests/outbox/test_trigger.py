"""The outbox is written by the database: one row per target of the grant's resource, in the grant's transaction.

Every path that changes a grant (here: the app's own store functions and plain SQL as the application role)
reaches the outbox without knowing of it; the application role cannot insert, delete, rewrite or silently
finish a row.
"""

import psycopg
import pytest

from policies import parse_policy
from service.access import store as grant_store
from service.access.resources import sync_resources
from tests.support.factories import add_grant, add_person, rows
from tests.support.policy import policy_toml, resource

TARGETS = [
    {"key": "gh-scim", "type": "scim", "resource": "github", "url": "http://127.0.0.1:9/scim/v2",
     "token_env": "GH_TOKEN"},
    {"key": "gh-hook", "type": "webhook", "resource": "github", "url": "http://127.0.0.1:9/hook",
     "secret_env": "GH_HOOK"},
    {"key": "vpn-group", "type": "ldap_group", "resource": "vpn", "url": "ldap://127.0.0.1:9",
     "group_dn": "cn=vpn,ou=groups,dc=example,dc=org"},
]


def policy(targets=TARGETS):
    text = policy_toml(resources=[resource("vpn", kind="vpn"), resource("github")], targets=targets)
    return parse_policy(text.encode(), source="test.toml")


@pytest.fixture
def targeted(database):
    with psycopg.connect(database.app_url) as conn:
        sync_resources(conn, policy())
    return database


def outbox(database):
    return rows(database, "SELECT target, user_name, resource, op, cause, reason, state FROM outbox ORDER BY id")


def test_a_revocation_by_the_app_writes_one_row_per_target_in_its_transaction(targeted):
    alice = add_person(targeted, "alice")
    add_grant(targeted, alice, "github")
    assert outbox(targeted) == [("gh-hook", "alice", "github", "enable", "grant", None, "intent"),
                                ("gh-scim", "alice", "github", "enable", "grant", None, "intent")]
    with psycopg.connect(targeted.app_url) as conn:
        grant_store.revoke(conn, "alice", "github", reason="left the team")
        conn.rollback()  # a rolled-back change leaves no row
    assert len(outbox(targeted)) == 2
    with psycopg.connect(targeted.app_url) as conn:
        grant_store.revoke(conn, "alice", "github", reason="left the team")
    assert outbox(targeted)[2:] == [("gh-hook", "alice", "github", "disable", "revoke", "left the team", "intent"),
                                    ("gh-scim", "alice", "github", "disable", "revoke", "left the team", "intent")]


def test_each_transition_maps_to_one_operation(targeted):
    bob = add_person(targeted, "bob")
    add_grant(targeted, bob, "vpn")
    with psycopg.connect(targeted.app_url) as conn:
        pid = bob
        conn.execute("UPDATE grants SET state = 'active', updated_at = now() WHERE person_id = %s", (pid,))
        conn.execute("UPDATE grants SET state = 'suspended', reason = 'training_lapsed:x' WHERE person_id = %s",
                     (pid,))
        conn.execute("UPDATE grants SET state = 'revoked', reason = 'review' WHERE person_id = %s", (pid,))
        conn.execute("UPDATE grants SET reason = 'x' WHERE person_id = %s", (pid,))
        conn.execute("UPDATE grants SET state = 'active', reason = NULL WHERE person_id = %s", (pid,))
        conn.execute("DELETE FROM grants WHERE person_id = %s", (pid,))
    assert [(op, cause) for _t, _u, _r, op, cause, _why, _s in outbox(targeted)] == [
        ("enable", "grant"), ("disable", "suspend"), ("enable", "restore"), ("disable", "delete")]


def test_one_statement_over_many_grants_queues_each_change_once_in_person_and_target_order(targeted):
    """The triggers run once per statement (033): a statement's rows are queued together, each changed grant once
    per target, nothing for a grant whose state stayed; a person's deletion disables what their grants gave."""
    people = {name: add_person(targeted, name) for name in ("fay", "gus", "hal", "ivy")}
    for name in people:
        add_grant(targeted, people[name], "github")
        add_grant(targeted, people[name], "vpn")
    before = len(outbox(targeted))
    with psycopg.connect(targeted.app_url) as conn:
        conn.execute("UPDATE grants SET state = 'suspended', reason = 'training_lapsed:sec' "
                     "WHERE person_id = ANY(%s::uuid[])", ([people["fay"], people["gus"]],))
        conn.execute("UPDATE grants SET state = 'revoked', reason = 'later' WHERE person_id = %s "
                     "OR state = 'suspended'", (people["hal"],))  # fay's and gus's: suspended -> revoked, nothing
        conn.execute("UPDATE grants SET updated_at = now()")  # no state changed: nothing
    with psycopg.connect(targeted.owner_url) as conn:  # cascades to their grants: gus's revoked, ivy's active
        conn.execute("DELETE FROM people WHERE id = ANY(%s::uuid[])", ([people["gus"], people["ivy"]],))
    queued = rows(targeted, "SELECT person_id::text, target, op, cause FROM outbox ORDER BY id")[before:]
    every = ("gh-hook", "gh-scim", "vpn-group")
    assert queued == (
        [(p, t, "disable", "suspend") for p in sorted([people["fay"], people["gus"]]) for t in every]
        + [(people["hal"], t, "disable", "revoke") for t in every]
        + [(people["ivy"], t, "disable", "delete") for t in every])


def test_a_target_dropped_from_the_policy_is_disabled_and_gets_no_rows(targeted):
    with psycopg.connect(targeted.app_url) as conn:
        sync_resources(conn, policy([t for t in TARGETS if t["key"] != "gh-hook"]))
    assert rows(targeted, "SELECT key, enabled FROM outbound_targets ORDER BY key") == [
        ("gh-hook", False), ("gh-scim", True), ("vpn-group", True)]
    add_grant(targeted, add_person(targeted, "carol"), "github")
    assert [r[0] for r in outbox(targeted)] == ["gh-scim"]


def _as_app(database, statement, params=()):
    with psycopg.connect(database.app_url) as conn:
        conn.execute(statement, params)


@pytest.mark.parametrize("statement", [
    "INSERT INTO outbox (target, person_id, resource, op, cause) "
    "SELECT 'gh-scim', gen_random_uuid(), 'github', 'disable', 'revoke'",
    "DELETE FROM outbox",
    "TRUNCATE outbox",
    "UPDATE outbox SET op = 'disable'",
    "UPDATE outbox SET target = 'gh-hook'",
    "ALTER TABLE grants DISABLE TRIGGER grants_outbox_update",
    "SET session_replication_role = replica",
    "UPDATE outbound_targets SET key = 'other'",
    "DELETE FROM outbound_targets",
])
def test_the_app_role_cannot_forge_skip_or_drop_rows(targeted, statement):
    add_grant(targeted, add_person(targeted, "dave"), "github")
    before = outbox(targeted)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _as_app(targeted, statement)
    assert outbox(targeted) == before


def test_a_row_changes_only_with_its_journal_row_and_only_forward(targeted):
    add_grant(targeted, add_person(targeted, "erin"), "vpn")
    (row_id,), = rows(targeted, "SELECT id FROM outbox")
    with pytest.raises(psycopg.DatabaseError, match="needs its journal row"):
        _as_app(targeted, "UPDATE outbox SET state = 'dead' WHERE id = %s", (row_id,))
    journal = ("INSERT INTO journal (kind, outcome, actor, detail) VALUES ('outbound', 'test', 'test', "
               "jsonb_build_object('outbox', %s::bigint))")
    with psycopg.connect(targeted.app_url) as conn:
        conn.execute(journal, (row_id,))
        conn.execute("UPDATE outbox SET state = 'sent', sent_at = now() WHERE id = %s", (row_id,))
        conn.execute("UPDATE outbox SET state = 'confirmed', confirmed_at = now() WHERE id = %s", (row_id,))
    with psycopg.connect(targeted.app_url) as conn, pytest.raises(psycopg.DatabaseError, match="final"):
        conn.execute(journal, (row_id,))
        conn.execute("UPDATE outbox SET state = 'intent' WHERE id = %s", (row_id,))
    with psycopg.connect(targeted.owner_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM outbox")  # not even the owner, short of disabling the trigger
    assert rows(targeted, "SELECT state FROM outbox") == [("confirmed",)]
