"""Campaigns end to end: start, mail, links, decisions, the deadline and the guard, on real PostgreSQL and SMTP."""

from datetime import datetime

import psycopg

from service.reviews import campaigns
from tests.support.factories import rows
from tests.support.reviews import days, item_id, now, page_form, state, used, world_for


def journal(database, kind: str, outcome: str | None = None) -> list[tuple]:
    where = "kind = %s" + (" AND outcome = %s" if outcome else "")
    return rows(database, f"SELECT subject, outcome, detail, actor, resource FROM journal WHERE {where} ORDER BY seq",
                (kind, outcome) if outcome else (kind,))


def test_a_campaign_snapshots_each_active_grant_and_never_assigns_anyone_their_own_access(world):
    started = world.start()
    assert (started.items, started.reviewers, started.admins_queue) == (5, 2, 1)
    got = rows(world.database, "SELECT p.user_name, r.key, v.user_name, i.route, i.grant_id::text FROM review_items i "
                               "JOIN people p ON p.id = i.person_id JOIN resources r ON r.id = i.resource_id "
                               "LEFT JOIN people v ON v.id = i.reviewer_id ORDER BY 1, 2")
    assert [g[:4] for g in got] == [
        ("alice", "github", "mona", "manager"), ("alice", "vpn", "mona", "manager"), ("bob", "vpn", "mona", "manager"),
        ("carl", "github", "olivia", "resource owner"), ("olivia", "github", None, "admins")]
    assert all(g[4] == world.grants[(g[0], g[1])] for g in got)  # each item is bound to its grant's id
    assert not rows(world.database, "SELECT 1 FROM review_items WHERE reviewer_id = person_id")
    queued, = journal(world.database, "review", "admins_queue")
    assert queued[0] == world.ids["olivia"] and queued[2]["campaign"] == started.key
    (_, _, detail, actor, _), = journal(world.database, "review", "started")
    assert (detail["items"], detail["reviewers"], actor) == (5, 2, "admin:test")


def test_the_manager_is_skipped_when_inactive_and_the_managers_manager_reviews(world):
    with psycopg.connect(world.database.owner_url) as conn:
        conn.execute("UPDATE people SET active = false WHERE user_name = 'mona'")
    world.start(["vpn"])
    assert rows(world.database, "SELECT v.user_name, i.route FROM review_items i JOIN people v ON "
                                "v.id = i.reviewer_id ORDER BY 1") == [("boss", "manager's manager")] * 2


def test_one_mail_per_reviewer_with_counts_and_link_in_text_and_html_journaled_and_never_resent(world):
    started = world.start()
    assert world.deliver() == {"mail_sent": 2, "mail_failed": 0}
    mona, = world.smtp.to("mona@example.com")
    assert "3 grants" in mona.subject and "2 people" in mona.subject and started.key in mona.subject
    assert mona.message.get_body(preferencelist=("html",)) is not None
    assert len(world.links_of("mona")) == 1
    sent = journal(world.database, "notify", "mail_sent")
    assert sorted(d["to"][0] for _, _, d, _, _ in sent) == ["mona@example.com", "olivia@example.com"]
    # A later run (a restart long after, when every claim has lapsed) sends nothing again.
    with psycopg.connect(world.database.owner_url) as conn:
        conn.execute("UPDATE notifications SET claimed_at = now() - interval '1 day'")
    assert world.deliver() == {"mail_sent": 0, "mail_failed": 0}
    assert len(world.smtp.received) == 2


def test_mail_that_fails_is_retried_by_the_next_run(world):
    world.start(["vpn"])
    world.smtp.refuse()
    assert world.deliver() == {"mail_sent": 0, "mail_failed": 1}
    world.smtp.refuse(False)
    assert world.deliver() == {"mail_sent": 1, "mail_failed": 0}
    assert [o for _, o, _, _, _ in journal(world.database, "notify")] == ["mail_failed", "mail_sent"]


def test_get_changes_nothing_post_decides_and_a_revoke_denies_at_once(world):
    world.start()
    world.deliver()
    link, = world.links_of("mona")
    before = state(world.database)
    page = world.client.get(world.path(link))
    assert page.status_code == 200 and "Alice" in page.text and "Bob" in page.text and "Carl" not in page.text
    assert page.headers["Referrer-Policy"] == "same-origin" and "no-store" in page.headers["Cache-Control"]
    assert state(world.database) == before  # opening the link wrote nothing, not even a journal row
    form = page_form(page.text)
    item = item_id(world, "alice", "github")
    revoked = world.client.post(world.path(link), data={**form, "decide": f"{item}:revoke",
                                                        f"comment:{item}": "left the project"},
                                headers={"Origin": "http://localhost:8080"})
    assert revoked.status_code == 200 and "Recorded 1 decision" in revoked.text
    assert world.grant_state("alice", "github") == ("revoked", f"review_revoked:{_key(world)}")
    (subject, outcome, detail, actor, resource), = journal(world.database, "review", "revoke")
    assert (subject, resource, detail["comment"], detail["item"]) == (world.ids["alice"], "github",
                                                                      "left the project", item)
    assert actor == f"reviewer:{world.ids['mona']}" and detail["evidence"]["recommendation"] == "revoke"
    assert rows(world.database, "SELECT decision, decided_by, comment, evidence->>'last_used' FROM review_items "
                                "WHERE id = %s", (item,)) == [("revoke", actor, "left the project", None)]
    assert world.check("alice", "github")["reasons"][0]["code"] in ("grant_revoked", f"review_revoked:{_key(world)}")
    codes = [r["code"] for r in world.check("alice", "github")["reasons"]]
    assert f"review_revoked:{_key(world)}" in codes
    # A replayed POST changes nothing and says so.
    again = world.client.post(world.path(link), data={**form, "decide": f"{item}:revoke"})
    assert "already decided" in again.text and len(journal(world.database, "review", "revoke")) == 1
    # Re-opening the link shows what was decided.
    assert "Revoked" in world.client.get(world.path(link)).text


def _key(world) -> str:
    return rows(world.database, "SELECT key FROM review_campaigns ORDER BY started_at DESC")[0][0]


def test_at_the_deadline_exactly_the_undecided_grants_are_denied_then_revoked(world):
    started = world.start(at=now() - days(14) + days(1) / 24)  # due an hour from now
    used(world.database, world.ids["alice"], "vpn")  # used lately: an approval takes effect at once
    assert "Recorded 1 decision" in link_decide(world, "alice", "vpn", "approve").text
    with psycopg.connect(world.database.owner_url) as conn:  # the due instant passes
        conn.execute("UPDATE review_campaigns SET due_at = now() - interval '1 minute'")
    key = started.key
    # Live: no job has run, the check already denies the undecided and allows the approved.
    assert world.check("alice", "vpn")["allow"] is True
    assert f"review_missed:{key}" in [r["code"] for r in world.check("bob", "vpn")["reasons"]]
    counts = campaigns_deadline(world)
    assert counts == {"campaigns": 1, "held": 0, "revoked": 4}
    assert world.grant_state("alice", "vpn") == ("active", None)
    for user, res in (("alice", "github"), ("bob", "vpn"), ("carl", "github"), ("olivia", "github")):
        assert world.grant_state(user, res) == ("revoked", f"review_missed:{key}")
    assert len(journal(world.database, "revoke", "review_missed")) == 4
    assert rows(world.database, "SELECT state FROM review_campaigns") == [("closed",)]
    # A second run does nothing; a new grant is not touched by the old miss.
    assert campaigns_deadline(world)["revoked"] == 0
    with psycopg.connect(world.database.owner_url) as conn:
        conn.execute("UPDATE grants SET state = 'active', reason = NULL WHERE id = %s", (world.grants[("bob", "vpn")],))
    assert world.check("bob", "vpn")["allow"] is True
    world.deliver()
    assert any("revoked" in m.subject.lower() for m in world.smtp.to("bob@example.com"))


def campaigns_deadline(world) -> dict:
    from service.reviews import jobs

    return jobs.deadline(world.services, now=now())


def link_decide(world, user: str, resource: str, choice: str, **extra):
    world.deliver()
    reviewer = {"alice": "mona", "bob": "mona", "carl": "olivia"}[user]
    link = world.links_of(reviewer)[-1]
    form = page_form(world.client.get(world.path(link)).text)
    item = item_id(world, user, resource)
    return world.client.post(world.path(link), data={**form, "decide": f"{item}:{choice}", **extra})


def test_the_guard_holds_an_over_threshold_deadline_and_checks_keep_allowing(settings, database, smtp, tmp_path):
    w = world_for(settings, database, smtp, tmp_path, share=0.2)
    try:
        started = w.start(at=now() - days(14) + days(1) / 24)
        used(database, w.ids["alice"], "vpn")
        link_decide(w, "alice", "vpn", "approve")  # 4 of 5 undecided: 80% > 20%
        with psycopg.connect(database.owner_url) as conn:
            conn.execute("UPDATE review_campaigns SET due_at = now() - interval '1 minute'")
        assert w.check("bob", "vpn")["allow"] is True  # held live at the due instant, before any job
        assert campaigns_deadline(w) == {"campaigns": 1, "held": 1, "revoked": 0}
        assert w.grant_state("bob", "vpn") == ("active", None)
        (_, _, detail, _, _), = journal(database, "review", "held")
        assert (detail["undecided"], detail["items"]) == (4, 5)
        assert w.check("bob", "vpn")["allow"] is True
        # A late click: the campaign is closed, nothing changes.
        late = link_decide(w, "bob", "vpn", "approve")
        assert late.status_code == 409 and "Campaign closed" in late.text
        assert rows(database, "SELECT count(*) FROM review_items WHERE decision IS NOT NULL") == [(1,)]
        with psycopg.connect(database.app_url) as conn, conn.transaction():
            campaigns.confirm(conn, started.key, now=now(), actor="admin:test")
        assert f"review_missed:{started.key}" in [r["code"] for r in w.check("bob", "vpn")["reasons"]]
        assert campaigns_deadline(w)["revoked"] == 4
        assert w.grant_state("bob", "vpn") == ("revoked", f"review_missed:{started.key}")
    finally:
        w.services.close()


def test_the_reviewer_chain_picked_in_sql_is_pick_reviewers_on_every_shape_and_the_snapshot_as_built_before(world):
    """Many people in every shape the chain meets (no manager, an inactive or deleted one, a manager's
    manager in each of those states, a two-person cycle, the resource's owner as the person): the items
    the one INSERT ... SELECT writes name the reviewer and route policies.reviews.pick_reviewer picks, and carry
    the snapshot store.snapshot builds row by row."""
    from policies.reviews import pick_reviewer
    from service.reviews import store

    db = world.database
    with psycopg.connect(db.owner_url) as conn:
        def person(name, manager=None, active=True, deleted=False):
            return conn.execute(
                "INSERT INTO people (user_name, display_name, title, primary_email, manager_id, active, source, "
                "started_at, deleted_at) VALUES (%s, %s, 'Engineer', %s, %s, %s, 'manual', "
                "now() - interval '400 days', CASE WHEN %s THEN now() END) RETURNING id::text",
                (name, name.upper() if len(name) % 2 else None, f"{name}@example.com", manager, active and not deleted,
                 deleted)
            ).fetchone()[0]
        tops = [person("top-ok"), person("top-off", active=False), person("top-gone", deleted=True), None]
        for t, top in enumerate(tops):
            for s, (active, deleted) in enumerate(((True, False), (False, False), (True, True))):
                mid = person(f"mid{t}{s}", manager=top, active=active, deleted=deleted)
                for k in range(4):
                    person(f"p{t}{s}{k}", manager=mid if k else None)
        a = person("cycle-a")
        b = person("cycle-b", manager=a, active=False)  # a: an inactive manager whose manager is a
        conn.execute("UPDATE people SET manager_id = %s WHERE id = %s", (b, a))  # a's manager's manager is a
        conn.execute("UPDATE people SET manager_id = %s WHERE user_name = 'olivia'", (a,))
        conn.execute("INSERT INTO grants (person_id, resource_id, state, granted_by) SELECT p.id, r.id, 'active', "
                     "CASE WHEN p.user_name LIKE '%%1' THEN 'rule' ELSE 'operator:root' END FROM people p, resources r "
                     "WHERE p.deleted_at IS NULL ON CONFLICT DO NOTHING")
    with psycopg.connect(db.app_url) as conn:
        before = {c.grant_id: c for c in store.snapshot(conn, ["vpn", "github"])}
        chain = dict(conn.execute("SELECT p.id::text, p.manager_id::text FROM people p").fetchall())
    started = world.start()
    olivia = world.ids["olivia"]
    got = rows(db, "SELECT grant_id::text, person_id::text, reviewer_id::text, route, snapshot FROM review_items")
    assert started.items == len(got) == len(before) > 100
    assert any(g[3] == "admins" for g in got) and any(g[3] == "manager's manager" for g in got)
    for grant_id, person_id, reviewer, route, snapshot in got:
        c = before[grant_id]
        owners = (olivia,) if c.resource == "github" else ()
        assert (reviewer, route) == pick_reviewer(person_id, c.chain, owners), (c.snapshot["user"], c.resource)
        assert c.chain[0][0] == chain[person_id] and reviewer != person_id
        for at in ("started_at", "granted_at"):  # the same instants (SQL writes them in UTC, six digits of µs)
            assert datetime.fromisoformat(snapshot.pop(at)) == datetime.fromisoformat(c.snapshot[at])
        assert snapshot == {k: v for k, v in c.snapshot.items() if k not in ("started_at", "granted_at")}
    queued = journal(db, "review", "admins_queue")
    assert sorted((q[0], q[4]) for q in queued) == sorted((g[1], before[g[0]].resource) for g in got if g[2] is None)
