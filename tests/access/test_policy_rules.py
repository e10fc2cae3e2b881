"""Access as code: the policy file's [[rules]] applied by `gatehouse policy apply` and at `gatehouse serve`."""

import hashlib
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from service.access.policy import LOCK
from service.db.locks import advisory_lock
from tests.support.admin import step_up
from tests.support.cli import db_env, gatehouse
from tests.support.factories import rows
from tests.support.net import free_port, start_gatehouse, stop_gatehouse, wait_ready
from tests.support.scim import GROUP, USER, Scim, make_token, patch_op

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


# --- the guard, at start and on apply; confirmed by the operator or by an admin's security key ---------------


def three_with_vpn(database, path, env) -> str:
    """Three members of vpn-users granted vpn by the file; return the version applied."""
    people_in_group(database, "vpn-users", "ada", "bob", "cy")
    version = write_policy(path, VPN_USERS)
    assert apply(env).returncode == 0
    assert rows(database, "SELECT count(*) FROM grants WHERE state = 'active'") == [(3,)]
    return version


def serve(env: dict, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    return start_gatehouse("serve", {**env, "GATEHOUSE_PORT": str(port), "GATEHOUSE_WORKERS": "1"}, log), port


def test_a_change_over_the_guard_is_held_at_start_serve_starts_and_the_operator_confirms(database, policy_env,
                                                                                        tmp_path):
    path, env = policy_env
    three_with_vpn(database, path, env)
    v2 = write_policy(path, "", share=0.10)  # the rule leaves: 3 of 3 grants would end
    proc, port = serve(env, tmp_path / "serve.log")
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/readyz", proc).json()["status"] == "ready"
    finally:
        output = stop_gatehouse(proc, tmp_path / "serve.log")
    assert "held" in output and "would end 3 of 3 active grants" in output
    assert rows(database, "SELECT count(*) FROM grants WHERE state = 'active'") == [(3,)]  # nothing ended
    (run_id, state, actor), = rows(database, "SELECT id::text, state, actor FROM policy_runs WHERE version = %s",
                                   (v2,))
    assert (state, actor) == ("held", "service:start")
    (outcome, reasons, detail), = rows(database, "SELECT outcome, reasons, detail FROM journal WHERE kind = 'admin' "
                                                 "AND policy_version = %s", (v2,))
    assert outcome == "held" and reasons[0]["code"] == "guard" and detail["run"] == run_id

    # Applying the same file again reports the hold; it neither holds twice nor applies.
    again = apply(env)
    assert again.returncode == 3 and f"HELD (run {run_id})" in again.stdout, again.stdout + again.stderr
    assert rows(database, "SELECT count(*) FROM policy_runs WHERE version = %s", (v2,)) == [(1,)]

    done = apply(env, "--confirm")
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("end ")] == [
        "end vpn for ada", "end vpn for bob", "end vpn for cy"]
    assert rows(database, "SELECT state, decided_by LIKE 'operator:%%' FROM policy_runs WHERE id = %s",
                (run_id,)) == [("confirmed", True)]
    assert rows(database, "SELECT count(*) FROM grants WHERE state = 'active'") == [(0,)]
    assert rows(database, "SELECT count(*), min(policy_version) FROM journal WHERE kind = 'revoke'") == [(3, v2)]
    assert rows(database, "SELECT outcome, detail->>'run' FROM journal WHERE detail->>'action' = 'policy.confirm'") == [
        ("ok", run_id)]
    assert apply(env, "--confirm").returncode == 1  # nothing held any more


def test_the_cli_apply_holds_too_and_a_dry_run_says_so_with_exit_3(database, policy_env):
    path, env = policy_env
    three_with_vpn(database, path, env)
    write_policy(path, "", share=0.10)
    dry = apply(env, "--dry-run")
    assert dry.returncode == 3 and "would be held: would end 3 of 3" in dry.stdout, dry.stdout + dry.stderr
    assert rows(database, "SELECT count(*) FROM policy_runs") == [(1,)]
    held = apply(env)
    assert held.returncode == 3 and "HELD" in held.stdout and "would end vpn for ada" in held.stdout
    assert rows(database, "SELECT state FROM policy_runs ORDER BY started_at") == [("applied",), ("held",)]
    assert rows(database, "SELECT count(*) FROM grants WHERE state = 'active'") == [(3,)]
    # A newer file supersedes the held change.
    v3 = write_policy(path, VPN_USERS, share=0.10)
    done = apply(env)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = rows(database, "SELECT id::text, version, state, decided_by FROM policy_runs ORDER BY started_at")
    assert [r[2] for r in runs] == ["applied", "discarded", "applied"]
    assert runs[1][3] == f"run:{runs[2][0]}" and runs[2][1] == v3

def test_an_admin_confirms_the_held_change_with_a_security_key(database, policy_env, web, signed_in):
    path, env = policy_env
    three_with_vpn(database, path, env)
    v2 = write_policy(path, "", share=0.10)
    assert apply(env).returncode == 3
    (run_id,), = rows(database, "SELECT id::text FROM policy_runs WHERE state = 'held'")
    dashboard = web.get("/admin").get_data(as_text=True)
    assert 'id="held-policy"' in dashboard and "would end 3 of 3 active grants" in dashboard
    page = web.get("/admin/access").get_data(as_text=True)
    assert f'data-action="policy.confirm" data-run="{run_id}"' in page and v2[:12] in page
    # An assertion made for another action does not release it.
    r, _, _ = step_up(web, signed_in, "policy.discard", {"run": run_id}, use_action="policy.confirm")
    assert r.status_code == 403 and r.json["code"] == "webauthn_wrong_action"
    assert rows(database, "SELECT state FROM policy_runs WHERE id = %s", (run_id,)) == [("held",)]
    r, _, _ = step_up(web, signed_in, "policy.confirm", {"run": run_id})
    assert r.status_code == 200 and r.json["state"] == "confirmed", r.json
    assert rows(database, "SELECT state, decided_by FROM policy_runs WHERE id = %s", (run_id,)) == [
        ("confirmed", "admin:ada@example.com")]
    assert rows(database, "SELECT count(*), min(actor), min(policy_version) FROM journal WHERE kind = 'revoke'") == [
        (3, "admin:ada@example.com", v2)]
    (detail,), = rows(database, "SELECT detail FROM journal WHERE detail->>'action' = 'policy.confirm'")
    assert detail["run"] == run_id and detail["counts"]["ended"] == 3 and detail["credential_id"]
    r, _, _ = step_up(web, signed_in, "policy.confirm", {"run": run_id})
    assert r.status_code == 409  # confirmed already
    assert 'id="held-policy"' not in web.get("/admin").get_data(as_text=True)


def test_replicas_starting_together_apply_a_version_once(database, policy_env, tmp_path):
    path, env = policy_env
    people_in_group(database, "vpn-users", "ada", "bob")
    version = write_policy(path, VPN_USERS)
    started = []
    # Another replica is in the middle of applying: both new ones must wait for it, then apply once between them.
    with advisory_lock(database.app_url, LOCK, timeout=5) as held:
        assert held is not None
        try:
            for name in ("a", "b"):
                started.append((*serve(env, tmp_path / f"serve-{name}.log"), tmp_path / f"serve-{name}.log"))
            time.sleep(3)  # both are up to the lock by now (they migrate nothing: two-URL mode)
            assert rows(database, "SELECT count(*) FROM policy_runs") == [(0,)]
            assert rows(database, "SELECT count(*) FROM grants") == [(0,)]
        except BaseException:
            for proc, _, log in started:
                stop_gatehouse(proc, log)
            raise
    try:
        for proc, port, _ in started:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    finally:
        for proc, _, log in started:
            stop_gatehouse(proc, log)
    assert rows(database, "SELECT version, state, actor FROM policy_runs") == [(version, "applied", "service:start")]
    assert rows(database, "SELECT count(*) FROM journal WHERE kind = 'grant' AND policy_version = %s",
                (version,)) == [(2,)]
    assert rows(database, "SELECT count(*) FROM journal WHERE detail->>'action' = 'policy.apply'") == [(1,)]


def test_the_console_lists_file_rules_apart_and_cannot_remove_them(database, policy_env, web, signed_in):
    path, env = policy_env
    people_in_group(database, "Sales", "sam")
    version = write_policy(path, VPN_USERS)
    assert apply(env).returncode == 0
    r, _, _ = step_up(web, signed_in, "rules.add", {"group": "sales", "resource": "wiki"})
    assert r.status_code == 200, r.json
    page = web.get("/admin/access").get_data(as_text=True)
    file_part = page[page.index('id="file-rules"'):page.index('id="console-rules"')]
    console_part = page[page.index('id="console-rules"'):]
    assert "vpn-users" in file_part and "(no such group yet)" in file_part and version[:12] in file_part
    assert "Sales" not in file_part and "vpn-users" not in console_part
    assert 'data-action="rules.remove" data-group="Sales" data-resource="wiki"' in console_part
    r, _, _ = step_up(web, signed_in, "rules.remove", {"group": "VPN-users", "resource": "vpn"})
    assert r.status_code == 409 and "rule of the policy file" in r.json["detail"], r.json
    assert rows(database, "SELECT group_name FROM policy_rules") == [("vpn-users",)]


def test_an_admin_discards_the_held_change(database, policy_env, web, signed_in):
    path, env = policy_env
    three_with_vpn(database, path, env)
    write_policy(path, "", share=0.10)
    assert apply(env).returncode == 3
    (run_id,), = rows(database, "SELECT id::text FROM policy_runs WHERE state = 'held'")
    r, _, _ = step_up(web, signed_in, "policy.discard", {"run": run_id})
    assert r.status_code == 200 and r.json["state"] == "discarded"
    assert rows(database, "SELECT state, decided_by FROM policy_runs WHERE id = %s", (run_id,)) == [
        ("discarded", "admin:ada@example.com")]
    assert rows(database, "SELECT count(*) FROM grants WHERE state = 'active'") == [(3,)]
    assert rows(database, "SELECT count(*) FROM journal WHERE detail->>'action' = 'policy.discard'") == [(1,)]
    assert apply(env, "--confirm").returncode == 1  # nothing held to confirm
