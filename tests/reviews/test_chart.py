"""The progress chart: a step line of items decided per day, with its figures as the SVG's text alternative."""

import re
from datetime import UTC, datetime, timedelta

import psycopg

from service.reviews.chart import HEIGHT, PAD, progress_svg
from tests.support.admin import step_up
from tests.support.reviews import mona_and_two

START = datetime(2026, 10, 1, 9, tzinfo=UTC)


def _points(svg: str) -> list[tuple[float, float]]:
    raw = re.search(r'<polyline points="([^"]+)"', svg).group(1)
    return [tuple(map(float, p.split(","))) for p in raw.split()]


def test_the_line_climbs_by_each_days_decisions_and_the_text_says_the_same():
    svg = progress_svg([(START + timedelta(days=1), 1), (START + timedelta(days=3), 3)], total=4, start=START,
                       end=START + timedelta(days=4))
    ys = [y for _, y in _points(svg)]
    bottom, top = HEIGHT - PAD, PAD
    assert ys == [bottom, bottom - (bottom - top) / 4, bottom - (bottom - top) / 4, top, top]
    assert 'role="img"' in svg and 'aria-labelledby="progress-title progress-desc"' in svg
    assert "4 of 4 items decided (100%) between 2026-10-01 and 2026-10-05; 2026-10-02: 1; 2026-10-04: 3" in svg


def test_no_decisions_and_no_items_draw_a_flat_line_and_say_so():
    svg = progress_svg([], total=0, start=START, end=START)
    assert {y for _, y in _points(svg)} == {HEIGHT - PAD} and "No decisions yet among 0 items" in svg


def test_the_campaign_page_shows_the_chart(web, signed_in, database):
    mona_and_two(database)
    done, _, _ = step_up(web, signed_in, "reviews.start", {"resources": ["vpn"], "due": "14"})
    key = done.json["campaign"]
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE review_campaigns SET started_at = started_at - interval '3 days'")
        conn.execute("UPDATE review_items SET decision = 'approve', decided_by = 'test', "
                     "decided_at = now() - interval '2 days' WHERE id = (SELECT min(id::text)::uuid FROM review_items)")
    page = web.get(f"/admin/reviews/{key}").text
    assert "<svg" in page and "1 of 2 items decided (50%)" in page and len(_points(page)) == 4
