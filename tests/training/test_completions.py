"""Training in, on real PostgreSQL: the completions API (per-item results, idempotence, scope) and the CSV import."""

from datetime import UTC, datetime, timedelta

import pytest

from service import bootstrap
from service.app import create_app
from service.bootstrap import load_policy
from tests.support.cli import db_env, gatehouse
from tests.support.factories import COURSE, add_completion, add_grant, add_person, grants_of, now, rows
from tests.support.training import LAPSED, item, post, token

# --- seeding (as the owner, plain SQL) ----------------------------------------------------------


@pytest.fixture
def gated(settings, database, policy_file):
    """Services on POLICY (vpn and wiki gated by the course, git not), and a test client of its app."""
    from dataclasses import replace

    built = bootstrap.build(replace(settings, policy_file=policy_file), database, policy=load_policy(policy_file))
    client = create_app(services=built).test_client()  # the app start syncs the policy's resources
    yield built, client
    built.close()


# --- the API -------------------------------------------------------------------------------------


def test_each_item_gets_its_result_and_accepted_ones_are_journaled(database, client):
    alice = add_person(database, "alice", email="alice@example.com", employee="E-1")
    headers = token(database)
    r = post(client, headers,
             item("alice", "1"), item("ALICE@example.com", "2"), item("E-1", "3"),
             item("alice", "1"),                                          # the same (source, source_id)
             item("nobody", "4"),
             item("alice", "5", course="knitting"),
             item("alice", "6", completed_at=now() + timedelta(hours=1)),
             item("alice", "7", completed_at="2024-05-01T10:00:00"),      # no offset
             item("alice", "8", completed_at="last tuesday"),
             {"person": "alice", "course": COURSE, "completed_at": "2024-05-01T10:00:00Z", "source": "lms"},
             "not an object")
    assert r.status_code == 200, r.json
    statuses = [(x["index"], x["status"]) for x in r.json["results"]]
    assert statuses == [(0, "accepted"), (1, "accepted"), (2, "accepted"), (3, "duplicate"), (4, "unknown_person"),
                        (5, "invalid"), (6, "invalid"), (7, "invalid"), (8, "invalid"), (9, "invalid"),
                        (10, "invalid")]
    details = [x["detail"] for x in r.json["results"]]
    assert "nobody" in details[4] and "knitting" in details[5] and "security-awareness" in details[5]
    assert "future" in details[6] and "offset" in details[7] and "ISO 8601" in details[8]
    assert "source_id" in details[9] and "object" in details[10]
    assert r.json["counts"] == {"accepted": 3, "duplicate": 1, "unknown_person": 1, "ambiguous_person": 0,
                                "invalid": 6}
    assert rows(database, "SELECT person_id::text, source_id FROM training_completions ORDER BY source_id") == [
        (alice, "1"), (alice, "2"), (alice, "3")]
    journaled = rows(database, "SELECT kind, outcome, actor, subject, detail->>'source_id', request_id FROM journal "
                               "WHERE kind <> 'check' ORDER BY seq")
    assert journaled == [("sync", "training_completed", "client:hr-lms", alice, n, r.headers["X-Request-Id"])
                         for n in ("1", "2", "3")]
    assert not rows(database, "SELECT 1 FROM people WHERE user_name = 'nobody'")  # never invented


def test_a_deleted_persons_user_name_never_records_for_someone_else(database, client):
    """The attack on imports: sam's employee number is "rita"; rita leaves; her completion must not become sam's."""
    from tests.support.scim import ENTERPRISE, USER, Scim, make_token

    scim = Scim(client, make_token(database, "okta"))
    rita = scim.post("Users", {"schemas": [USER], "userName": "rita"})[1]["id"]
    scim.post("Users", {"schemas": [USER, ENTERPRISE], "userName": "sam", ENTERPRISE: {"employeeNumber": "rita"}})
    assert scim.delete(f"Users/{rita}")[0] == 204
    r = post(client, token(database), item("rita", "1"), item("RITA", "2"))
    assert [(x["status"], x["detail"]) for x in r.json["results"]] == [
        ("unknown_person", "'rita' is the userName of a deleted person"),
        ("unknown_person", "'RITA' is the userName of a deleted person")]
    assert rows(database, "SELECT count(*) FROM training_completions") == [(0,)]
    assert rows(database, "SELECT count(*) FROM journal WHERE outcome = 'training_completed'") == [(0,)]


def test_an_item_naming_two_people_is_ambiguous_and_changes_nothing_for_it(database, client, tmp_path):
    rita, sam = add_person(database, "rita"), add_person(database, "sam", employee="rita")
    add_person(database, "ann", email="ann@example.com")
    add_person(database, "Ann@Example.com")  # someone's userName is ann's e-mail
    r = post(client, token(database), item("rita", "1"), item("sam", "2"), item("ann@example.com", "3"))
    assert [x["status"] for x in r.json["results"]] == ["ambiguous_person", "accepted", "ambiguous_person"]
    assert r.json["results"][0]["detail"] == f"'rita' names 2 different people ({', '.join(sorted([rita, sam]))}); " \
                                             "nothing was recorded"
    assert r.json["counts"]["ambiguous_person"] == 2
    assert rows(database, "SELECT person_id::text, source_id FROM training_completions") == [(sam, "2")]
    path = tmp_path / "lms.csv"
    path.write_text(f"person,course,completed_at,source_id\nrita,{COURSE},{now().isoformat()},c1\n"
                    f"E-404,{COURSE},{now().isoformat()},c2\n")
    done = gatehouse("training", "import", str(path), env=db_env(database))
    assert done.returncode == 1 and "line 2: ambiguous_person: 'rita' names 2 different people" in done.stdout
    assert done.stdout.splitlines()[-1] == "0 accepted, 0 duplicate, 1 unknown person, 1 ambiguous person, 0 invalid"
    assert rows(database, "SELECT count(*) FROM training_completions") == [(1,)]


def test_sending_the_same_batch_again_changes_nothing(database, client):
    add_person(database, "alice")
    headers = token(database)
    batch = [item("alice", "a"), item("alice", "b")]
    assert [x["status"] for x in post(client, headers, *batch).json["results"]] == ["accepted", "accepted"]
    again = post(client, headers, *batch).json
    assert [x["status"] for x in again["results"]] == ["duplicate", "duplicate"]
    assert rows(database, "SELECT count(*) FROM training_completions") == [(2,)]
    assert rows(database, "SELECT count(*) FROM journal WHERE outcome = 'training_completed'") == [(2,)]


def test_the_scope_is_required_and_refusals_are_journaled(database, client):
    add_person(database, "alice")
    r = post(client, token(database, scopes=("access:check",), name="vpn-gw"), item("alice", "1"))
    assert r.status_code == 403 and r.json["code"] == "forbidden"
    assert post(client, {}, item("alice", "1")).status_code == 401
    assert rows(database, "SELECT count(*) FROM training_completions") == [(0,)]
    client.application.extensions["gatehouse"].refusals.flush(everything=True)  # no token: counted
    assert rows(database, "SELECT kind, outcome, actor FROM journal ORDER BY seq") == [
        ("sync", "refused", "client:vpn-gw"), ("sync", "refused", "anonymous")]


@pytest.mark.parametrize("body", [[], {"completions": []}, {"completions": "x"}, {"completions": [{}] * 1001}])
def test_a_malformed_request_is_a_400_problem(database, client, body):
    r = client.post("/api/v1/training/completions", json=body, headers=token(database))
    assert r.status_code == 400 and r.content_type == "application/problem+json"


def test_a_completion_that_brings_the_person_back_restores_in_the_same_request(database, gated):
    services, client = gated
    alice = add_person(database, "alice")
    add_grant(database, alice, "vpn", "suspended", LAPSED)
    add_grant(database, alice, "wiki", "revoked", "left the wiki team")
    add_grant(database, alice, "git", "suspended", "security incident")
    add_completion(database, alice, now() - timedelta(days=400))
    r = post(client, token(database), item("alice", "x1"))
    assert r.json["results"][0] == {"index": 0, "status": "accepted", "detail": "recorded; access restored: vpn"}
    assert grants_of(database, alice) == {"vpn": ("active", None), "wiki": ("revoked", "left the wiki team"),
                                          "git": ("suspended", "security incident")}
    (kind, outcome, detail), = rows(database, "SELECT kind, outcome, detail FROM journal WHERE subject = %s", (alice,))
    assert (kind, outcome, detail["resources"], detail["source_id"]) == ("restore", "training_completed", ["vpn"],
                                                                          "x1")


def test_an_old_completion_is_recorded_but_restores_nothing(database, gated):
    services, client = gated
    alice = add_person(database, "alice")
    add_grant(database, alice, "vpn", "suspended", LAPSED)
    r = post(client, token(database), item("alice", "old", completed_at=now() - timedelta(days=500)))
    assert r.json["results"][0]["detail"] == "recorded"
    assert grants_of(database, alice) == {"vpn": ("suspended", LAPSED)}


# --- the CSV import ------------------------------------------------------------------------------


def test_csv_import_reports_bad_lines_with_numbers_and_keeps_the_good_ones(database, tmp_path):
    alice = add_person(database, "alice", email="alice@example.com")
    bob = add_person(database, "bob", employee="E-2")
    day = (now() - timedelta(days=2)).isoformat()
    path = tmp_path / "lms-export.csv"
    path.write_text("\n".join([
        "person,course,completed_at,source_id",
        f"alice@example.com,{COURSE},{day},r1",
        f"E-2,{COURSE},{day},r2",
        f"alice,{COURSE},yesterday,r3",
        f"zed,{COURSE},{day},r4",
        f"bob,{COURSE},{day}",
        f"bob,{COURSE},{(now() + timedelta(days=3)).isoformat()},r6",
        f"bob,{COURSE},{day},r2",
        f"bob,basket-weaving,{day},r8",
    ]) + "\n")
    done = gatehouse("training", "import", str(path), env=db_env(database))
    assert done.returncode == 1, done.stderr
    out = done.stdout.splitlines()
    assert [line.split(":")[0:2] for line in out if line.startswith("line ")] == [
        ["line 4", " invalid"], ["line 5", " unknown_person"], ["line 6", " invalid"], ["line 7", " invalid"],
        ["line 9", " invalid"]]
    report = "\n".join(out)
    assert "line 4: invalid: completed_at 'yesterday'" in report and "'zed'" in report
    assert "line 6: invalid: expected 4 fields, got 3" in report and "future" in report and "basket-weaving" in report
    assert "processed 7/7 lines" in report  # not a terminal: plain lines, no bar
    assert out[-1] == "2 accepted, 1 duplicate, 1 unknown person, 0 ambiguous person, 4 invalid"
    assert done.stderr.strip() == "gatehouse: error: 5 of 8 lines were not imported (see above)"
    assert rows(database, "SELECT person_id::text, source, source_id FROM training_completions ORDER BY 3") == [
        (alice, "csv:lms-export.csv", "r1"), (bob, "csv:lms-export.csv", "r2")]
    (actor,), = set(rows(database, "SELECT actor FROM journal WHERE outcome = 'training_completed'"))
    assert actor.startswith("operator:")


def test_csv_import_of_good_lines_exits_0_and_again_reports_duplicates(database, tmp_path):
    add_person(database, "alice")
    path = tmp_path / "good.csv"
    path.write_text(f"person,course,completed_at,source_id,source\nalice,{COURSE},2025-01-02T03:04:05+02:00,9,okta\n")
    first = gatehouse("training", "import", str(path), env=db_env(database))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "1 accepted, 0 duplicate, 0 unknown person, 0 ambiguous person, 0 invalid"
    again = gatehouse("training", "import", str(path), env=db_env(database))
    assert again.returncode == 0 and again.stdout.splitlines()[-1].startswith("0 accepted, 1 duplicate")
    assert rows(database, "SELECT source, source_id, completed_at FROM training_completions") == [
        ("okta", "9", datetime(2025, 1, 2, 1, 4, 5, tzinfo=UTC))]


def test_csv_without_the_columns_is_one_line_and_exit_1(database, tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("user,when\nalice,2025-01-01T00:00:00Z\n")
    done = gatehouse("training", "import", str(path), env=db_env(database))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("gatehouse: error: ")
    assert "lacks person, course, completed_at, source_id" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_csv_with_a_nul_or_bad_utf8_is_refused_line_by_line_and_stores_nothing(database, tmp_path):
    """PostgreSQL text cannot hold NUL: each such line is invalid, never a traceback; bytes that are no UTF-8
    (a lone surrogate's ED A0 80 among them) refuse the file in one line."""
    add_person(database, "alice")
    day = (now() - timedelta(days=2)).isoformat()
    path = tmp_path / "nul.csv"
    path.write_text("\n".join([
        "person,course,completed_at,source_id,source",
        f"al\x00ice,{COURSE},{day},r1,lms",
        f"alice,{COURSE}\x00,{day},r2,lms",
        f"alice,{COURSE},{day}\x00,r3,lms",
        f"alice,{COURSE},{day},r\x004,lms",
        f"alice,{COURSE},{day},r5,l\x00ms",
    ]) + "\n")
    done = gatehouse("training", "import", str(path), env=db_env(database))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert [line.split(":")[:2] for line in done.stdout.splitlines() if line.startswith("line ")] == [
        [f"line {n}", " invalid"] for n in range(2, 7)]
    assert done.stderr.strip() == "gatehouse: error: 5 of 5 lines were not imported (see above)"
    path.write_bytes(f"person,course,completed_at,source_id\nal\xed\xa0\x80ice,{COURSE},{day},r6\n".encode("latin-1"))
    done = gatehouse("training", "import", str(path), env=db_env(database))
    assert done.returncode == 1 and done.stderr.startswith("gatehouse: error: ") and "not UTF-8" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert rows(database, "SELECT count(*) FROM training_completions") == [(0,)]
    assert rows(database, "SELECT count(*) FROM journal") == [(0,)]


def test_the_api_document_lists_every_status():
    from service import openapi
    from service.training import plan as planning

    assert openapi._STATUSES == list(planning.STATUSES)
