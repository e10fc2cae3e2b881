"""The auditor's pages, the exports and the SIEM pull: what an auditor sees, takes away, and can verify."""

import csv
import io
import re

import psycopg
import pytest

from service import journal
from service.audit import store
from service.clients import store as clients
from service.journal import jsonb, offline
from tests.support.admin import ORIGIN
from tests.support.audit import story
from tests.support.cli import db_env, gatehouse
from tests.support.factories import rows
from tests.support.people import session_for
from tests.support.reviews import add_grant, add_person


@pytest.fixture
def told(database):
    return story(database)


@pytest.fixture
def auditor(web, database, told):
    session_for(web, database, told["audra"])
    return web


def _page(web, path):
    r = web.get(path)
    return r.status_code, r.get_data(as_text=True)


def test_an_auditor_lands_on_the_dashboard_and_its_charts_state_their_figures(auditor, told):
    assert auditor.get("/admin").headers["Location"].endswith("/admin/audit")
    status, page = _page(auditor, "/admin/audit")
    assert status == 200
    for heading in ("Suspensions and revocations per week, by reason", "Gateway checks per day, allowed and denied",
                    "People with current training, per course (%)", "Access review campaigns: items by outcome"):
        assert heading in page
    assert page.count('role="img"') == 4
    desc = re.search(r'<desc id="checks-d">([^<]*)</desc>', page).group(1)
    assert re.search(r"allow 121, deny 1\.", desc), desc  # the story's checks, all today
    assert "training_lapsed 1" in page and "review_missed 1" in page
    assert 'href="/admin/people"' not in page  # an auditor without hr does not see the people pages


def test_the_journal_page_filters_pages_and_offers_the_exports(auditor, told):
    status, page = _page(auditor, "/admin/audit/journal?person=ivo.petrov&kind=check")
    assert status == 200 and page.count("<tr><td class=\"mono\">") == store.PAGE
    more = re.search(r'href="(/admin/audit/journal\?[^"]*before=(\d+)[^"]*)"', page)
    assert more and "person=ivo.petrov" in more.group(1)
    status, older = _page(auditor, more.group(1).replace("&amp;", "&"))
    seqs = [int(s) for s in re.findall(r'<tr><td class="mono">(\d+)</td>', older)]
    assert status == 200 and seqs and max(seqs) < int(more.group(2))
    assert "journal.csv?person=ivo.petrov&amp;kind=check" in page
    status, bad = _page(auditor, "/admin/audit/journal?kind=nonsense")
    assert status == 400 and "unknown kind" in bad


def test_the_revocation_log_says_who_what_why_and_by_whom(auditor, told):
    status, page = _page(auditor, "/admin/audit/revocations")
    assert status == 200
    table = page[page.index('id="revocations"'):]
    assert table.index(">mia<") < table.index(">Ivo Petrov<")  # newest first
    assert "review_missed:q4" in table and "campaign q4, reviewer hana@example.com" in table
    assert "training_lapsed:security-awareness" in table and "security-awareness: lapsed, lapsed 2026-11-01" in table
    assert "system:training-sweep" in table


def test_a_persons_timeline_and_the_compliance_page(auditor, told):
    status, page = _page(auditor, f"/admin/audit/people/{told['ivo']}")
    assert status == 200 and "Timeline: Ivo Petrov" in page and "Older rows" in page
    status, page = _page(auditor, f"/admin/audit/people/ivo.petrov?before={told['seqs'][4]}")
    assert status == 200 and "training_lapsed" in page and "Older rows" not in page
    assert [int(s) for s in re.findall(r'<tr><td class="mono">(\d+)</td>', page)] == told["seqs"][3::-1]
    assert _page(auditor, "/admin/audit/people/nobody")[0] == 404
    status, page = _page(auditor, "/admin/audit/training")
    assert status == 200 and "Training compliance" in page


def test_exports_stream_every_row_and_verify_offline(auditor, database, told):
    r = auditor.get("/admin/audit/journal.jsonl")
    assert r.status_code == 200 and r.is_streamed and r.mimetype == "application/jsonl"
    lines = r.get_data(as_text=True).splitlines()
    assert len(lines) == len(told["seqs"])
    result = offline.check_lines(lines)  # the server's own rule, applied to what was exported
    assert result.ok and result.count == len(lines), result
    tampered = list(lines)
    tampered[5] = tampered[5].replace('"outcome":"deny"', '"outcome":"allow"')
    assert tampered[5] != lines[5]
    broken = offline.check_lines(tampered)
    assert not broken.ok and broken.bad_seq == 6 and broken.problem == "hash does not match the row's content"

    r = auditor.get("/admin/audit/journal.csv?outcome=deny")
    table = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert table[0] == list(store.COLUMNS) and len(table) == 2
    detail = table[1][store.COLUMNS.index("detail")]
    assert detail.startswith('{"user": "=cmd')  # JSON text: a spreadsheet does not run it
    assert auditor.get("/admin/audit/journal.csv?since=tomorrow").status_code == 400
    assert auditor.get("/admin/audit/journal.xml").status_code == 404


def test_a_cell_a_spreadsheet_would_run_is_quoted_and_the_rule_reverses():
    from service.audit.export import _cell
    assert _cell("=SUM(A1)") == "'=SUM(A1)" and _cell("'quoted") == "''quoted" and _cell("plain") == "plain"
    for value in ("=SUM(A1)", "'quoted", "+1", "-1", "@x", "plain"):
        cell = _cell(value)
        assert (cell[1:] if cell.startswith("'") else cell) == value


def _bearer(database, scopes) -> dict:
    with psycopg.connect(database.app_url) as conn:
        clients.create(conn, name="siem", scopes=scopes, created_by="test")
        return {"Authorization": f"Bearer {clients.issue_static_token(conn, 'siem').secret}"}


def test_a_siem_pulls_the_journal_in_order_and_checks_the_chain_as_it_goes(web, database, told):
    headers = _bearer(database, ("journal:read",))
    after, prev, pulled = 0, journal.GENESIS.hex(), 0
    while True:
        r = web.get(f"/api/v1/journal?after_seq={after}&limit=25", headers=headers)
        assert r.status_code == 200
        body = jsonb.loads(r.get_data(as_text=True))
        if not body["rows"]:
            break
        fields = [offline.fields(p) for p in body["rows"]]
        result = journal.check_rows(iter(fields), after_seq=after, after_hash=prev)
        assert result.ok, result
        after, prev, pulled = int(body["next_after_seq"]), result.head, pulled + len(fields)
    assert pulled == int(body["head"]["seq"]) and prev == body["head"]["hash"]


def test_the_pull_needs_its_scope_and_refuses_bad_cursors(web, database, told):
    assert web.get("/api/v1/journal").status_code == 401
    r = web.get("/api/v1/journal", headers=_bearer(database, ("scim",)))
    assert r.status_code == 403 and r.json["code"] == "forbidden"
    assert rows(database, "SELECT outcome, detail->>'what' FROM journal WHERE kind = 'admin' ORDER BY seq DESC "
                          "LIMIT 1") == [("refused", "scope:journal:read")]
    headers = {"Authorization": _bearer_again(database)}
    for bad in ("after_seq=-1", "after_seq=x", "limit=0", "limit=1001", "kind=nope", "person=nobody"):
        r = web.get(f"/api/v1/journal?{bad}", headers=headers)
        assert r.status_code in (400, 404) and r.is_json and r.json["detail"], bad


def _bearer_again(database) -> str:
    with psycopg.connect(database.app_url) as conn:
        clients.create(conn, name="siem2", scopes=("journal:read",), created_by="test")
        return f"Bearer {clients.issue_static_token(conn, 'siem2').secret}"


def test_pages_need_the_auditor_or_admin_role(web, database, told):
    assert web.get("/admin/audit").status_code == 401  # signed out: the sign-in page
    hr = rows(database, "INSERT INTO people (user_name, source) VALUES ('hank', 'scim') RETURNING id::text")[0][0]
    rows(database, "INSERT INTO person_roles (person_id, role, granted_by) VALUES (%s, 'hr', 'test') RETURNING 1",
         (hr,))
    session_for(web, database, hr)
    for path in ("/admin/audit", "/admin/audit/journal", "/admin/audit/journal.csv", "/admin/audit/revocations",
                 f"/admin/audit/people/{told['ivo']}", "/admin/audit/training"):
        assert web.get(path).status_code == 403, path


def test_an_admin_reads_the_audit_pages_too(web, signed_in, told):
    assert web.get("/admin/audit/revocations", headers={"Origin": ORIGIN}).status_code == 200


def test_an_auditor_reads_the_campaign_reports_and_sees_no_admin_control(auditor, database, told):
    mona = add_person(database, "mona")
    add_grant(database, add_person(database, "zed", manager=mona), "vpn")
    done = gatehouse("reviews", "start", "--resources", "vpn", "--due", "14d", env=db_env(database))
    assert done.returncode == 0, done.stderr
    key = rows(database, "SELECT key FROM review_campaigns")[0][0]
    status, listing = _page(auditor, "/admin/reviews")
    assert status == 200 and f'href="/admin/reviews/{key}"' in listing
    assert 'data-action="reviews.start"' not in listing
    status, report = _page(auditor, f"/admin/reviews/{key}")
    assert status == 200 and 'data-action="reviews.extend"' not in report and 'role="img"' in report
    r = auditor.get(f"/admin/reviews/{key}.csv")
    assert r.status_code == 200 and "zed" in r.get_data(as_text=True)
