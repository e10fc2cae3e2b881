"""Access as code: the policy file's [[rules]] applied by `gatehouse policy apply` and at `gatehouse serve`."""

import hashlib
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.conftest import db_env, gatehouse
from tests.scim.conftest import GROUP, USER, Scim, make_token, patch_op

POLICY = """\
[[resources]]
key = "vpn"
name = "Corporate VPN"
kind = "vpn"

[[resources]]
key = "wiki"
name = "Wiki"
kind = "tool"

[reviews]
cadence_days = 90
due_days = 14

[guard]
max_deactivation_share = {share}
max_deactivations = 50
{rules}"""
VPN_USERS = '\n[[rules]]\ngroup = "vpn-users"\nresources = ["vpn"]\n'


def write_policy(path: Path, rules: str = "", share: float = 1.0) -> str:
    """Write the policy file; return its version (the SHA-256 of its bytes)."""
    data = POLICY.format(share=share, rules=rules).encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def rows(database, query, params=()):
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute(query, params).fetchall()


def people_in_group(database, group: str, *names: str) -> list[str]:
    """People (source manual) and a SCIM-style group holding them; their ids."""
    with psycopg.connect(database.owner_url) as conn:
        gid = conn.execute("INSERT INTO groups (display_name, source) VALUES (%s, 'scim') "
                           "ON CONFLICT (lower(display_name)) DO UPDATE SET version = groups.version "
                           "RETURNING id", (group,)).fetchone()[0]
        ids = []
        for name in names:
            pid = conn.execute("INSERT INTO people (user_name, source) VALUES (%s, 'manual') RETURNING id",
                               (name,)).fetchone()[0]
            conn.execute("INSERT INTO group_members (group_id, person_id) VALUES (%s, %s)", (gid, pid))
            ids.append(str(pid))
        return ids


@pytest.fixture
def policy_env(database, tmp_path):
    path = tmp_path / "policy.toml"
    return path, {**db_env(database), "GATEHOUSE_POLICY_FILE": str(path)}


def apply(env, *flags) -> subprocess.CompletedProcess:
    return gatehouse("policy", "apply", *flags, env=env)


def test_a_file_rule_grants_and_removing_it_from_the_file_ends_access(database, policy_env):
    path, env = policy_env
    (ada,) = people_in_group(database, "VPN-Users", "ada")
    v1 = write_policy(path, VPN_USERS)
    done = apply(env)
    assert done.returncode == 0, done.stderr
    assert "grant vpn to ada" in done.stdout and f"policy {v1[:12]} applied" in done.stdout
    assert rows(database, "SELECT state, granted_by FROM grants") == [("active", "rule")]
    (kind, subject, resource, actor, version, detail), = rows(
        database, "SELECT kind, subject, resource, actor, policy_version, detail FROM journal WHERE kind = 'grant'")
    assert (kind, subject, resource, version) == ("grant", ada, "vpn", v1)
    assert actor.startswith("operator:") and detail["via"] == "policy" and detail["user"] == "ada"
    (outcome, run_detail), = rows(database, "SELECT outcome, detail FROM journal WHERE kind = 'admin' "
                                            "AND policy_version = %s", (v1,))
    assert outcome == "applied" and run_detail["rules_added"] == [["vpn-users", "vpn"]]
    explained = gatehouse("access", "explain", "ada", "vpn", env=env)
    assert explained.returncode == 0 and explained.stdout.startswith("ALLOW"), explained.stdout + explained.stderr

    # Applied again: nothing to change, nothing journaled.
    seq = rows(database, "SELECT max(seq) FROM journal")
    again = apply(env)
    assert again.returncode == 0 and "in force already" in again.stdout, again.stdout
    assert rows(database, "SELECT max(seq) FROM journal") == seq

    # The rule leaves the file: the grant it gave ends, journaled with the new version.
    v2 = write_policy(path, "")
    done = apply(env)
    assert done.returncode == 0, done.stderr
    assert "end vpn for ada" in done.stdout
    assert rows(database, "SELECT state, reason FROM grants") == [("revoked", "left the group that granted it")]
    assert rows(database, "SELECT kind, subject, policy_version FROM journal WHERE kind = 'revoke'") == [
        ("revoke", ada, v2)]
    assert rows(database, "SELECT count(*) FROM policy_rules") == [(0,)]
    denied = gatehouse("access", "explain", "ada", "vpn", env=env)
    assert denied.returncode == 1 and "[grant_revoked]" in denied.stdout


def test_a_file_rule_covers_a_group_that_arrives_later_and_its_grants_carry_the_version(database, policy_env,
                                                                                       client):
    path, env = policy_env
    v1 = write_policy(path, VPN_USERS)
    done = apply(env)
    assert done.returncode == 0 and "0 grants created" in done.stdout, done.stdout + done.stderr
    scim = Scim(client, make_token(database, "okta"))
    ada = scim.post("Users", {"schemas": [USER], "userName": "ada@example.com"})[1]["id"]
    status, group, _ = scim.post("Groups", {"schemas": [GROUP], "displayName": "VPN-users", "members": []})
    assert status == 201
    scim.patch(f"Groups/{group['id']}", patch_op({"op": "add", "path": "members", "value": [{"value": ada}]}))
    assert rows(database, "SELECT person_id::text, state FROM grants") == [(ada, "active")]
    assert rows(database, "SELECT subject, policy_version, detail->>'via' FROM journal WHERE kind = 'grant'") == [
        (ada, v1, "group rule")]


def test_dry_run_prints_the_changes_and_writes_nothing(database, policy_env):
    path, env = policy_env
    people_in_group(database, "vpn-users", "ada", "bob")
    write_policy(path, VPN_USERS + '\n[[rules]]\ngroup = "nobody-yet"\nresources = ["wiki"]\n')
    tables = ("grants", "policy_rules", "policy_runs", "journal", "resources")

    def counts():
        return [rows(database, f"SELECT count(*) FROM {t}")[0][0] for t in tables]

    before = counts()
    done = apply(env, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "would add rule: members of vpn-users get vpn",
        "would add rule: members of nobody-yet get wiki",
        "would grant vpn to ada",
        "would grant vpn to bob",
        done.stdout.splitlines()[-1],
    ]
    assert "(nothing written)" in done.stdout.splitlines()[-1]
    assert counts() == before == [0, 0, 0, 0, 0]


def test_bad_input_is_one_line_and_changes_nothing(database, policy_env):
    path, env = policy_env
    path.write_text(POLICY.format(share=1.0, rules='\n[[rules]]\ngroup = "x"\nresources = ["printer"]\n'))
    done = apply(env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"gatehouse: error: {path}: rules[0].resources[0]: names no resource in [[resources]]: "
                           "'printer'\n")
    write_policy(path, VPN_USERS)
    both = apply(env, "--dry-run", "--confirm")
    assert both.returncode == 2 and both.stderr.count("\n") == 1 and "not both" in both.stderr
    nothing = apply(env, "--confirm")
    assert nothing.returncode == 1 and nothing.stderr.startswith("gatehouse: error: no held policy change")
    assert nothing.stderr.count("\n") == 1
    assert rows(database, "SELECT (SELECT count(*) FROM journal), (SELECT count(*) FROM policy_runs)") == [(0, 0)]
