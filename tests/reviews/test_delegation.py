"""Delegation: a reviewer hands the whole open set to another manager, who gets a mail and a link of their own;
the original link then shows the delegation. Journaled; a refused delegation changes nothing."""

import psycopg

from tests.support.reviews import add_person, item_id, page_form, rows, state

ORIGIN = {"Origin": "http://localhost:8080"}


def _mona(world):
    world.start()
    world.deliver()
    link, = world.links_of("mona")
    path = world.path(link)
    return path, page_form(world.client.get(path).text)


def test_a_reviewer_delegates_the_whole_set_the_delegate_gets_a_link_and_the_original_link_shows_it(world):
    path, form = _mona(world)
    page = world.client.post(path, data={"csrf": form["csrf"], "delegate": "boss@example.com",
                                         "delegate_comment": "on leave"}, headers=ORIGIN)
    assert page.status_code == 200 and "Delegated 3 items to Boss" in page.text, page.text
    assert rows(world.database, "SELECT DISTINCT v.user_name FROM review_items i JOIN people v ON v.id = i.reviewer_id "
                                "JOIN people p ON p.id = i.person_id WHERE p.user_name IN ('alice', 'bob')") == [
        ("boss",)]
    assert rows(world.database, "SELECT f.user_name, t.user_name, d.items, d.comment FROM review_delegations d "
                                "JOIN people f ON f.id = d.from_id JOIN people t ON t.id = d.to_id") == [
        ("mona", "boss", 3, "on leave")]
    (actor, subject, detail), = rows(world.database, "SELECT actor, subject, detail FROM journal WHERE kind = 'review' "
                                                     "AND outcome = 'delegated'")
    assert (actor, subject, detail["to"], detail["items"]) == (f"reviewer:{world.ids['mona']}", world.ids["mona"],
                                                               world.ids["boss"], 3)
    assert len(detail["item_ids"]) == 3 and detail["comment"] == "on leave"
    # The delegate's mail carries their own link; from it they decide.
    world.deliver()
    boss_link, = world.links_of("boss")
    boss_page = world.client.get(world.path(boss_link))
    assert "Alice" in boss_page.text and "Bob" in boss_page.text
    item = item_id(world, "bob", "vpn")
    done = world.client.post(world.path(boss_link), data={**page_form(boss_page.text), "decide": f"{item}:revoke"},
                             headers=ORIGIN)
    assert "Recorded 1 decision" in done.text and world.grant_state("bob", "vpn")[0] == "revoked"
    # The original link shows who has it now, offers no decision, and refuses one.
    mine = world.client.get(path)
    assert mine.status_code == 200 and "You delegated 3 items" in mine.text and "Boss" in mine.text
    assert 'name="decide"' not in mine.text
    before = state(world.database)
    late = world.client.post(path, data={**form, "decide": f"{item_id(world, 'alice', 'vpn')}:approve"},
                             headers=ORIGIN)
    assert late.status_code == 403 and state(world.database) == before


def test_a_delegation_to_someone_in_the_set_to_a_non_manager_or_to_nobody_changes_nothing(world):
    path, form = _mona(world)
    add_person(world.database, "dora", manager=world.ids["alice"])  # alice now manages someone
    with psycopg.connect(world.database.owner_url) as conn:
        conn.execute("UPDATE people SET manager_id = NULL WHERE user_name = 'carl'")
    before = state(world.database)
    for to, says in (("alice", "nobody reviews their own access"), ("carl", "no active manager"),
                     ("nobody@example.com", "no active manager"), ("mona", "to yourself"), ("", "no active manager")):
        page = world.client.post(path, data={"csrf": form["csrf"], "delegate": to}, headers=ORIGIN)
        assert page.status_code == 400 and says in page.text and "Nothing was changed" in page.text, (to, page.text)
    assert state(world.database) == before


def test_a_delegation_without_the_pages_csrf_token_changes_nothing(world):
    path, form = _mona(world)
    before = state(world.database)
    page = world.client.post(path, data={"csrf": "0" * 64, "delegate": "boss"}, headers=ORIGIN)
    assert page.status_code == 403 and state(world.database) == before
