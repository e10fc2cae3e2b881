"""`gatehouse access grant|revoke|list`: grants by hand from the command line, journaled with the operator as actor."""

import psycopg
import pytest

from tests.support.cli import db_env, gatehouse
from tests.support.factories import rows


@pytest.fixture
def env(database):
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO resources (key, name, kind) VALUES ('vpn', 'VPN', 'vpn'), ('wiki', 'Wiki', 'tool')")
        for name in ("ada", "bob"):
            conn.execute("INSERT INTO people (user_name, source) VALUES (%s, 'manual')", (name,))
    return db_env(database)


def journal(database):
    return rows(database, "SELECT kind, outcome, subject IS NOT NULL, resource, reasons, actor, detail->>'via' "
                          "FROM journal ORDER BY seq")


def test_grant_list_and_revoke_with_journal_rows(database, env):
    done = gatehouse("access", "grant", "ADA", "vpn", "--reason", "TICKET-1 new hire", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "granted vpn to ada\n", "")
    assert gatehouse("access", "grant", "bob", "wiki", "--reason", "TICKET-2", env=env).returncode == 0
    (state, by), = rows(database, "SELECT state, granted_by FROM grants g JOIN people p ON p.id = g.person_id "
                                  "WHERE p.user_name = 'ada'")
    assert state == "active" and by.startswith("operator:")
    (kind, outcome, has_subject, resource, reasons, actor, via), _ = journal(database)
    assert (kind, outcome, has_subject, resource, via) == ("grant", "active", True, "vpn", "operator")
    assert reasons == [{"code": "operator", "text": "TICKET-1 new hire"}] and actor == by

    listed = gatehouse("access", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["USER", "RESOURCE", "STATE", "REASON", "BY", "SINCE"]
    assert [line.split()[:4] for line in lines[1:]] == [["ada", "vpn", "active", "-"], ["bob", "wiki", "active", "-"]]
    by_user = gatehouse("access", "list", "--user", "Bob", env=env).stdout.splitlines()
    assert [line.split()[:2] for line in by_user[1:]] == [["bob", "wiki"]]
    by_resource = gatehouse("access", "list", "--resource", "vpn", env=env).stdout.splitlines()
    assert [line.split()[:2] for line in by_resource[1:]] == [["ada", "vpn"]]

    done = gatehouse("access", "revoke", "ada", "vpn", "--reason", "TICKET-3 moved team", env=env)
    assert (done.returncode, done.stdout) == (0, "revoked vpn from ada: TICKET-3 moved team\n"), done.stderr
    assert rows(database, "SELECT state, reason FROM grants g JOIN people p ON p.id = g.person_id "
                          "WHERE p.user_name = 'ada'") == [("revoked", "TICKET-3 moved team")]
    kind, outcome, _, resource, reasons, actor, via = journal(database)[-1]
    assert (kind, outcome, resource, via, actor) == ("revoke", "revoked", "vpn", "operator", by)
    assert reasons == [{"code": "operator", "text": "TICKET-3 moved team"}]
    denied = gatehouse("access", "explain", "ada", "vpn", env=env)
    assert denied.returncode == 1 and "[grant_revoked]" in denied.stdout
    after = gatehouse("access", "list", "--user", "ada", env=env).stdout.splitlines()[1]
    assert after.split()[:3] == ["ada", "vpn", "revoked"] and "TICKET-3 moved team" in after


BAD = [
    # (arguments, exit code, words on the one stderr line)
    (("grant", "nobody", "vpn", "--reason", "x"), 1, "no person with userName 'nobody'"),
    (("grant", "ada", "printer", "--reason", "x"), 1, "no resource 'printer'"),
    (("grant", "ada", "vpn", "--reason", "  "), 1, "--reason must be 1 to 256 printable characters"),
    (("grant", "ada", "vpn", "--reason", "x" * 257), 1, "--reason must be 1 to 256 printable characters"),
    (("grant", "ada\x07", "vpn", "--reason", "x"), 1, "USER must be 1 to 256 printable characters"),
    (("grant", "ada", "vpn"), 2, "Missing option '--reason'"),
    (("revoke", "bob", "vpn", "--reason", "x"), 1, "bob holds no live grant on vpn"),
    (("list", "--user", "ada", "--resource", "vpn"), 2, "give --user or --resource, not both"),
    (("list", "--user", "nobody"), 1, "no person with userName 'nobody'"),
    (("list", "--resource", "printer"), 1, "no resource 'printer'"),
]


@pytest.mark.parametrize("args, code, words", BAD, ids=[" ".join(b[0])[:40] for b in BAD])
def test_bad_input_is_one_line_on_stderr_and_changes_nothing(database, env, args, code, words):
    done = gatehouse("access", *args, env=env)
    assert done.returncode == code and done.stdout == ""
    assert done.stderr.startswith("gatehouse: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert words in done.stderr
    assert rows(database, "SELECT (SELECT count(*) FROM grants), (SELECT count(*) FROM journal)") == [(0, 0)]
