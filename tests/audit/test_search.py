"""The journal search: each filter, keyset paging both ways, time ranges, and plans that use the indexes."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from service.audit import query, store
from service.audit.store import Search
from service.errors import BadRequest, NotFound
from tests.support.audit import story


@pytest.fixture
def told(database):
    return story(database)


def _conn(database):
    return psycopg.connect(database.app_url)


def _kinds(rows):
    return [(r.kind, r.outcome) for r in rows]


def test_each_filter_finds_exactly_its_rows(database, told):
    with _conn(database) as conn:
        assert _kinds(store.page(conn, Search(kinds=("suspend", "revoke")))) == [
            ("revoke", "review_missed"), ("suspend", "training_lapsed")]
        assert _kinds(store.page(conn, Search(reason="review_missed:q4"))) == [("revoke", "review_missed")]
        assert _kinds(store.page(conn, Search(resource="git"))) == [("revoke", "review_missed")]
        assert _kinds(store.page(conn, Search(actor="client:lms"))) == [("restore", "training_completed")]
        assert _kinds(store.page(conn, Search(outcome="deny"))) == [("check", "deny")]
        mine = store.page(conn, Search(subject=told["mia"]))
        assert [r.subject for r in mine] == [told["mia"]]
        both = store.page(conn, Search(subject=told["ivo"], kinds=("check",), resource="vpn"), limit=1000)
        assert len(both) == 121 and all(r.kind == "check" and r.subject == told["ivo"] for r in both)


def test_keyset_pages_cover_every_row_once_newest_first_and_oldest_first(database, told):
    with _conn(database) as conn:
        seen, before = [], None
        while page := store.page(conn, Search(subject=told["ivo"]), before=before, limit=50):
            seen += [r.seq for r in page]
            before = page[-1].seq
        assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 124
        pulled, after = [], 0
        while page := store.page(conn, Search(), after=after, limit=40):
            pulled += [r.seq for r in page]
            after = page[-1].seq
        assert pulled == told["seqs"]  # the whole journal of this test, in order, once


def test_a_time_range_is_exact_at_its_bounds(database, told):
    with _conn(database) as conn:
        rows = store.page(conn, Search(), after=0, limit=1000)
        middle = rows[60]
        since = store.page(conn, Search(since=middle.ts), after=0, limit=1000)
        until = store.page(conn, Search(until=middle.ts), after=0, limit=1000)
        assert since[0].ts >= middle.ts and all(r.ts >= middle.ts for r in since)
        assert all(r.ts < middle.ts for r in until)
        assert len(since) + len(until) == len(rows)
        later = datetime.now(UTC) + timedelta(days=1)
        assert store.page(conn, Search(since=later)) == []


def test_the_query_string_is_checked_whole(database, told):
    with _conn(database) as conn:
        search, kept = query.parse(conn, {"person": "IVO.PETROV", "kind": "check,suspend", "since": "2026-01-01",
                                          "until": "2026-12-31", "reason": ""})
        assert search.subject == told["ivo"] and search.kinds == ("check", "suspend")
        assert search.since == datetime(2026, 1, 1, tzinfo=UTC)
        assert search.until == datetime(2027, 1, 1, tzinfo=UTC)  # an until date includes its whole day
        assert "reason" not in kept
        for bad, message in (({"kind": "checks"}, "unknown kind"), ({"since": "yesterday"}, "ISO 8601"),
                             ({"since": "2026-02-01", "until": "2026-01-01"}, "before until"),
                             ({"actor": "a\x00b"}, "printable"), ({"resource": "x" * 300}, "at most 256")):
            with pytest.raises(BadRequest, match=message):
                query.parse(conn, bad)
        with pytest.raises(NotFound):
            query.parse(conn, {"person": "nobody"})
        with pytest.raises(BadRequest):
            query.cursor({"before": "-1"}, "before")


@pytest.mark.parametrize("search, index", [
    (Search(subject="00000000-0000-0000-0000-000000000000"), "journal_subject_idx"),
    (Search(resource="vpn"), "journal_resource_seq_idx"),
    (Search(kinds=("revoke",)), "journal_kind_seq_idx"),
    (Search(actor="client:lms"), "journal_actor_seq_idx"),
    (Search(reason="training_lapsed"), "journal_reasons_idx"),
])
def test_each_filter_reads_through_its_index(database, told, search, index):
    with _conn(database) as conn:
        conn.execute("SET enable_seqscan = off")  # a small table: ask what the planner can use, as at scale
        plan = store.explain(conn, search)
    assert index in plan, plan


def test_the_revocation_log_names_who_what_why(database, told):
    with _conn(database) as conn:
        found = store.revocations(conn, Search())
    assert [(v.entry.kind, v.user_name, v.resources) for v in found] == [
        ("revoke", "mia", ["git"]), ("suspend", "ivo.petrov", ["vpn"])]
    assert found[1].entry.detail["lapses"][0]["course"] == "security-awareness"
    assert found[0].downstream == []  # no outbound target for git


def test_the_revocation_log_shows_each_changes_own_downstream_rows_in_one_query(database):
    from policies import parse_policy
    from service.access import grants
    from service.access.resources import sync_resources
    from tests.support.factories import add_grant, add_person, rows
    from tests.support.policy import policy_toml, resource
    targets = [{"key": "gh-scim", "type": "scim", "resource": "github", "url": "http://127.0.0.1:9/scim/v2",
                "token_env": "GH_TOKEN"},
               {"key": "gh-hook", "type": "webhook", "resource": "github", "url": "http://127.0.0.1:9/hook",
                "secret_env": "GH_HOOK"}]
    text = policy_toml(resources=[resource("vpn", kind="vpn"), resource("github")], targets=targets)
    with _conn(database) as conn:
        sync_resources(conn, parse_policy(text.encode(), source="test.toml"))
    for name in ("alice", "bob"):
        add_grant(database, add_person(database, name), "github")
    with _conn(database) as conn:
        for name in ("alice", "bob"):
            with conn.transaction():
                grants.revoke(conn, name, "github", actor="operator:test", via="operator", reason="left")
        found = store.revocations(conn, Search())
    assert [v.user_name for v in found] == ["bob", "alice"]
    for v in found:  # each change its own two rows (the grants' enable rows and the other person's are not it)
        assert [(d["target"], d["resource"], d["state"]) for d in v.downstream] == [
            ("gh-hook", "github", "intent"), ("gh-scim", "github", "intent")]
    assert rows(database, "SELECT count(*) FROM outbox") == [(8,)]
