"""The e-mailed link under attack: forged, tampered, expired, another reviewer's items, another campaign's,
no CSRF, a foreign origin. Each gets a clear page and changes nothing."""

import psycopg
import pytest
from itsdangerous import URLSafeSerializer

from service.reviews import links
from tests.support.factories import rows
from tests.support.reviews import days, item_id, now, page_form, state, used

ORIGIN = {"Origin": "http://localhost:8080"}


@pytest.fixture
def mona(world):
    world.start()
    world.deliver()
    link, = world.links_of("mona")
    page = world.client.get(world.path(link))
    return world, world.path(link), page_form(page.text)


@pytest.mark.parametrize("campaign", [True, False], ids=["with a campaign", "before any campaign"])
def test_a_forged_link_gets_a_clear_page(world, campaign):
    if campaign:
        world.start()
    before = state(world.database)
    for token in ("nonsense", links.make(b"x" * 32, "c", "r")):
        page = world.client.get(f"/reviews/{token}")
        assert page.status_code == 403 and "Review link not valid" in page.text and "Traceback" not in page.text
        assert world.client.post(f"/reviews/{token}", data={"decide": "x:approve"}).status_code == 403
    assert state(world.database) == before


def test_a_tampered_link_is_refused_and_changes_nothing(mona):
    world, path, form = mona
    token = path.rsplit("/", 1)[1]
    olivia_token = world.path(world.links_of("olivia")[0]).rsplit("/", 1)[1]
    campaign = URLSafeSerializer(b"any").loads_unsafe(token)[1]["c"]
    swapped = token.rsplit(".", 1)[0] + "." + olivia_token.rsplit(".", 1)[1]  # mona's payload, olivia's signature
    other_key = links.make(b"k" * 32, campaign, world.ids["olivia"])  # the right shape, signed by someone else
    before = state(world.database)
    for bad in (swapped, other_key, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")):
        assert world.client.get(f"/reviews/{bad}").status_code == 403
        item = item_id(world, "carl", "github")
        assert world.client.post(f"/reviews/{bad}", data={**form, "decide": f"{item}:approve"},
                                 headers=ORIGIN).status_code == 403
    assert state(world.database) == before


def test_another_reviewers_item_through_my_link_is_refused_and_nothing_changes(mona):
    world, path, form = mona
    before = state(world.database)
    carl = item_id(world, "carl", "github")  # olivia's to review
    refused = world.client.post(path, data={**form, "decide": f"{carl}:revoke"}, headers=ORIGIN)
    assert refused.status_code == 403 and "not yours" in refused.text
    assert state(world.database) == before and world.grant_state("carl", "github") == ("active", None)


def test_an_item_of_another_campaign_through_this_link_is_refused(world):
    world.start(["vpn"])
    world.start(["github"])
    world.deliver()
    vpn_link, github_link = world.links_of("mona")
    form = page_form(world.client.get(world.path(vpn_link)).text)
    github_item = item_id(world, "alice", "github")
    before = state(world.database)
    refused = world.client.post(world.path(vpn_link), data={**form, "decide": f"{github_item}:revoke"},
                                headers=ORIGIN)
    assert refused.status_code == 403 and state(world.database) == before
    assert "Alice" in world.client.get(world.path(github_link)).text


def test_without_the_pages_csrf_token_or_from_another_origin_nothing_changes(mona):
    world, path, form = mona
    item = item_id(world, "bob", "vpn")
    before = state(world.database)
    for data, headers in (({"decide": f"{item}:revoke"}, ORIGIN),
                          ({**form, "csrf": "0" * 64, "decide": f"{item}:revoke"}, ORIGIN),
                          ({**form, "decide": f"{item}:revoke"}, {"Origin": "https://evil.example"})):
        page = world.client.post(path, data=data, headers=headers)
        assert page.status_code == 403 and "nothing was changed" in page.text
    assert state(world.database) == before


def test_after_the_due_instant_the_link_shows_campaign_closed_and_a_late_click_changes_nothing(world):
    world.start(at=now() - days(15))  # due a day ago
    world.deliver()
    link, = world.links_of("mona")
    page = world.client.get(world.path(link))
    assert page.status_code == 200 and "Campaign closed" in page.text and 'name="decide"' not in page.text
    before = state(world.database)
    late = world.client.post(world.path(link), data={**page_form(page.text),
                                                     "decide": f"{item_id(world, 'bob', 'vpn')}:approve"},
                             headers=ORIGIN)
    assert late.status_code == 409 and "Campaign closed" in late.text
    assert state(world.database) == before


def test_an_approval_against_an_unused_recommendation_goes_to_the_second_stage(mona):
    world, path, form = mona
    item = item_id(world, "bob", "vpn")  # never used: recommended for revocation
    staged = world.client.post(path, data={**form, "decide": f"{item}:approve"}, headers=ORIGIN)
    assert "sent to a second reviewer" in staged.text
    assert rows(world.database, "SELECT decision, v.user_name, second_stage_why FROM review_items i JOIN people v "
                                "ON v.id = i.second_stage_by WHERE i.id = %s", (item,)) == [
        (None, "boss", "approved against an unused recommendation")]
    (detail,), = rows(world.database, "SELECT detail FROM journal WHERE kind = 'review' AND outcome = 'second_stage'")
    assert detail["to"] == world.ids["boss"] and detail["evidence"]["recommendation"] == "revoke"
    # The boss gets a link; from it the approval takes effect.
    world.deliver()
    boss_link, = world.links_of("boss")
    page = world.client.get(world.path(boss_link))
    assert "Second stage" in page.text
    done = world.client.post(world.path(boss_link), data={**page_form(page.text), "decide": f"{item}:approve"},
                             headers=ORIGIN)
    assert "Recorded 1 decision" in done.text
    assert rows(world.database, "SELECT decision, decided_by FROM review_items WHERE id = %s", (item,)) == [
        ("approve", f"reviewer:{world.ids['boss']}")]


def test_a_fast_bulk_approval_goes_to_the_second_stage(world):
    from tests.support.reviews import add_grant, add_person

    for name in ("dan", "eve", "fay"):
        pid = add_person(world.database, name, manager=world.ids["mona"])
        add_grant(world.database, pid, "vpn")
    for user in ("alice", "bob", "dan", "eve", "fay"):
        used(world.database, rows(world.database, "SELECT id::text FROM people WHERE user_name = %s", (user,))[0][0],
             "vpn")
    world.start(["vpn"])
    world.deliver()
    link, = world.links_of("mona")
    form = page_form(world.client.get(world.path(link)).text)
    selected = [item_id(world, u, "vpn") for u in ("alice", "bob", "dan", "eve", "fay")]
    wrong = world.client.post(world.path(link), data={**form, "bulk": "approve", "select": selected, "confirm": "4"},
                              headers=ORIGIN)
    assert wrong.status_code == 400 and rows(world.database, "SELECT count(*) FROM journal WHERE kind = 'review' "
                                                             "AND outcome <> 'started'") == [(0,)]
    staged = world.client.post(world.path(link), data={**form, "bulk": "approve", "select": selected,
                                                       "confirm": "5"}, headers=ORIGIN)
    assert "5 approvals sent to a second reviewer" in staged.text and "more than 3 approvals" in staged.text
    assert rows(world.database, "SELECT count(*) FROM review_items WHERE decision IS NULL "
                                "AND second_stage_by IS NOT NULL") == [(5,)]


def test_the_journal_and_the_grant_commit_together_with_the_decision(mona):
    """A revoke whose journal row cannot be written leaves the grant and the item as they were."""
    world, path, form = mona
    item = item_id(world, "bob", "vpn")
    with psycopg.connect(world.database.owner_url) as conn:  # the journal refuses every append
        conn.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'no journal'; END $$")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION refuse()")
    page = world.client.post(path, data={**form, "decide": f"{item}:revoke"}, headers=ORIGIN)
    assert page.status_code >= 500
    assert world.grant_state("bob", "vpn") == ("active", None)
    assert rows(world.database, "SELECT decision FROM review_items WHERE id = %s", (item,)) == [(None,)]
