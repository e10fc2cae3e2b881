"""The console: start, confirm and extend are admin actions bound to a WebAuthn assertion; pages and the export."""

import psycopg

from service.reviews import jobs
from tests.reviews.support import add_grant, add_person, days, now
from tests.support.admin import ORIGIN, csrf_of, step_up
from tests.support.factories import rows


def people(database):
    mona = add_person(database, "mona")
    for name in ("alice", "bob"):
        add_grant(database, add_person(database, name, manager=mona), "vpn")


def test_an_admin_starts_a_campaign_with_a_security_key_and_without_one_nothing_starts(web, signed_in, database):
    people(database)
    refused = web.post("/admin/api/reviews/start", json={"params": {"resources": ["vpn"], "due": "14"}},
                       headers={"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)})
    assert refused.status_code == 403 and rows(database, "SELECT count(*) FROM review_campaigns") == [(0,)]
    done, _, _ = step_up(web, signed_in, "reviews.start", {"resources": ["vpn"], "due": "14"})
    assert done.status_code == 200 and done.json["items"] == 2, done.json
    key = done.json["campaign"]
    (detail,), = rows(database, "SELECT detail FROM journal WHERE kind = 'admin' AND outcome = 'ok' "
                                "AND detail->>'action' = 'reviews.start'")
    assert detail["campaign"] == key
    assert key in web.get("/admin/reviews").text
    page = web.get(f"/admin/reviews/{key}")
    assert page.status_code == 200 and "mona" in page.text
    export = web.get(f"/admin/reviews/{key}.csv")
    assert export.mimetype == "text/csv" and len(export.text.splitlines()) == 3


def test_a_held_campaign_is_shown_and_confirmed_with_a_security_key(web, signed_in, database, services):
    people(database)
    done, _, _ = step_up(web, signed_in, "reviews.start", {"resources": ["vpn"], "due": "14"})
    key = done.json["campaign"]
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE review_campaigns SET started_at = started_at - interval '15 days', "
                     "due_at = due_at - interval '15 days'")
    assert jobs.deadline(services, now=now())["held"] == 1  # 2 of 2 undecided > 20%
    assert "Held" in web.get(f"/admin/reviews/{key}").text
    wrong, _, _ = step_up(web, signed_in, "reviews.confirm", {"campaign": key}, use_params={"campaign": "other"},
                          endpoint="/admin/api/reviews/confirm")
    assert wrong.status_code == 403 and rows(database, "SELECT state FROM review_campaigns") == [("held",)]
    confirmed, _, _ = step_up(web, signed_in, "reviews.confirm", {"campaign": key})
    assert confirmed.status_code == 200
    assert jobs.deadline(services, now=now())["revoked"] == 2
    assert rows(database, "SELECT state, reason FROM grants") == [("revoked", f"review_missed:{key}")] * 2


def test_an_admin_extends_a_held_campaign_and_it_opens_again(web, signed_in, database, services):
    people(database)
    done, _, _ = step_up(web, signed_in, "reviews.start", {"resources": ["vpn"], "due": "14"})
    key = done.json["campaign"]
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE review_campaigns SET started_at = started_at - interval '15 days', "
                     "due_at = due_at - interval '15 days'")
    jobs.deadline(services, now=now())
    extended, _, _ = step_up(web, signed_in, "reviews.extend", {"campaign": key, "days": "7"})
    assert extended.status_code == 200
    (state, due), = rows(database, "SELECT state, due_at FROM review_campaigns")
    assert state == "open" and abs((due - now()) - days(7)) < days(0.01)
