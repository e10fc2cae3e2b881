"""The SVG charts: every figure in the text alternative, bars in proportion, an empty chart says so."""

import re

from service.audit import charts


def test_a_chart_states_every_figure_and_draws_bars_in_proportion():
    c = charts.chart("Checks", [("mon", "allow", 30), ("mon", "deny", 10), ("tue", "allow", 20)])
    assert c.categories == ("mon", "tue") and [n for n, _ in c.series] == ["allow", "deny"]
    assert c.describe() == "Checks. mon: allow 30, deny 10; tue: allow 20."
    svg = str(charts.svg(c, ident="x"))
    assert '<title id="x-t">Checks</title>' in svg and 'aria-labelledby="x-t x-d"' in svg
    heights = [float(h) for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', svg)]
    assert heights[0] == 3 * heights[1] and heights[2] == 2 * heights[1]  # 30 : 10 : 20 of the tallest bar, 40


def test_text_is_escaped_and_an_empty_chart_says_so():
    c = charts.chart("<b>x</b>", [("a&b", "<s>", 1)])
    svg = str(charts.svg(c, ident="y"))
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg and "a&amp;b" in svg
    empty = charts.chart("Nothing", [])
    assert empty.describe() == "Nothing: no data yet." and "No data yet." in str(charts.svg(empty, ident="z"))
    share = charts.chart("Share", [("course", "current", 50)], unit="%", scale=100)
    assert ">100%</text>" in str(charts.svg(share, ident="s")) and share.describe() == "Share. course: current 50%."
