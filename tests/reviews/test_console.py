"""The console: start, confirm and extend are admin actions bound to a WebAuthn assertion; pages and the export."""

import psycopg

from service.reviews import jobs
from tests.support.admin import ORIGIN, csrf_of, step_up
from tests.support.factories import rows
from tests.support.reviews import add_grant, add_person, days, mona_and_two, now


def test_an_admin_starts_a_campaign_with_a_security_key_and_without_one_nothing_starts(web, signed_in, database):
    mona_and_two(database)
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
    mona_and_two(database)
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
    mona_and_two(database)
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


MOVED = ("SELECT (SELECT json_agg(i ORDER BY id) FROM review_items i), (SELECT json_agg(g ORDER BY id) FROM grants g), "
         "(SELECT json_agg(c) FROM review_campaigns c), (SELECT count(*) FROM journal WHERE kind = 'review')")


def _queue_item(database, user: str) -> str:
    return rows(database, "SELECT i.id::text FROM review_items i JOIN people p ON p.id = i.person_id "
                          "WHERE p.user_name = %s", (user,))[0][0]


def test_an_admin_decides_the_admins_queue_with_a_security_key(web, signed_in, database):
    mona_and_two(database)
    olga = add_person(database, "olga")  # no manager, no owner: nobody else may review her access
    add_grant(database, olga, "vpn")
    add_grant(database, add_person(database, "ada"), "vpn")  # ada@example.com is the signed-in admin
    done, _, _ = step_up(web, signed_in, "reviews.start", {"resources": ["vpn"], "due": "14"})
    key, olga_item, ada_item = done.json["campaign"], _queue_item(database, "olga"), _queue_item(database, "ada")
    assert done.json["admins_queue"] == 2 and "Olga" in web.get("/admin/reviews").text
    before = rows(database, MOVED)
    params = {"item": olga_item, "decision": "revoke", "comment": "left the project"}
    refused = web.post("/admin/api/reviews/decide", json={"params": params},
                       headers={"Origin": ORIGIN, "X-CSRF-Token": csrf_of(web)})
    other, _, _ = step_up(web, signed_in, "reviews.decide", params, use_params={**params, "decision": "approve"})
    alice, _, _ = step_up(web, signed_in, "reviews.decide", {**params, "item": _queue_item(database, "alice")})
    own, _, _ = step_up(web, signed_in, "reviews.decide", {**params, "item": ada_item})
    assert (refused.status_code, other.status_code, alice.status_code, own.status_code) == (403, 403, 409, 403)
    assert "own access" in own.json["detail"]
    assert rows(database, MOVED) == before  # refusals journal themselves; nothing else moved

    decided, _, _ = step_up(web, signed_in, "reviews.decide", params)
    assert decided.status_code == 200, decided.json
    assert rows(database, "SELECT decision, decided_by, comment, evidence->>'via' FROM review_items WHERE id = %s",
                (olga_item,)) == [("revoke", "admin:ada@example.com", "left the project", "admins_queue")]
    assert rows(database, "SELECT state, reason FROM grants WHERE person_id = %s", (olga,)) == [
        ("revoked", f"review_revoked:{key}")]
    assert rows(database, "SELECT items_open, items_total FROM review_campaigns") == [(3, 4)]
    (detail, actor), = rows(database, "SELECT detail, actor FROM journal WHERE kind = 'review' AND outcome = 'revoke'")
    assert (detail["item"], detail["queue"], actor) == (olga_item, "admins", "admin:ada@example.com")
    (admin,), = rows(database, "SELECT detail FROM journal WHERE kind = 'admin' AND outcome = 'ok' "
                               "AND detail->>'action' = 'reviews.decide'")
    assert admin["item"] == olga_item and admin["decision"] == "revoke"
    again, _, _ = step_up(web, signed_in, "reviews.decide", params)
    assert again.status_code == 409 and "decided already" in again.json["detail"]
    assert "Olga" not in web.get("/admin/reviews").text.split("Admins' queue")[1]
