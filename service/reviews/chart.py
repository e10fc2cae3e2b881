"""The campaign page's progress chart: decided items over time, drawn on the server as SVG (no script).

The SVG names itself (role="img", <title>, <desc> with the figures) and the page keeps the per-day table beside
it, so a screen reader gets the same facts as the picture (WCAG 1.1.1).
"""

import html
from collections.abc import Sequence
from datetime import date, datetime

WIDTH, HEIGHT, PAD = 600, 200, 40


def progress_svg(per_day: Sequence[tuple[datetime, int]], *, total: int, start: datetime, end: datetime) -> str:
    """A step line of the share of items decided, day by day from `start` to `end` (both inclusive)."""
    first, last = start.date(), max(end.date(), start.date())
    span = max((last - first).days, 1)
    by_day: dict[date, int] = {d.date(): n for d, n in per_day}
    points, done = [], 0
    for offset in range(span + 1):
        day = date.fromordinal(first.toordinal() + offset)
        done += by_day.get(day, 0)
        points.append((offset, done))
    share = done / total if total else 0.0

    def x(offset: int) -> float:
        return PAD + offset * (WIDTH - 2 * PAD) / span

    def y(count: int) -> float:
        return HEIGHT - PAD - (count / total if total else 0) * (HEIGHT - 2 * PAD)

    line = " ".join(f"{x(o):.1f},{y(n):.1f}" for o, n in points)
    desc = (f"{done} of {total} items decided ({share:.0%}) between {first.isoformat()} and {last.isoformat()}; "
            + "; ".join(f"{d.date().isoformat()}: {n}" for d, n in per_day) if per_day
            else f"No decisions yet among {total} items since {first.isoformat()}.")
    text = html.escape
    return (
        f'<svg role="img" aria-labelledby="progress-title progress-desc" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" style="max-width:{WIDTH}px" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="progress-title">Items decided over time</title><desc id="progress-desc">{text(desc)}</desc>'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#444"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#444"/>'
        f'<text x="{PAD - 6}" y="{HEIGHT - PAD}" text-anchor="end" font-size="12" fill="#222">0</text>'
        f'<text x="{PAD - 6}" y="{PAD + 4}" text-anchor="end" font-size="12" fill="#222">{total}</text>'
        f'<text x="{PAD}" y="{HEIGHT - PAD + 16}" font-size="12" fill="#222">{first.isoformat()}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 16}" text-anchor="end" font-size="12" fill="#222">'
        f'{last.isoformat()}</text>'
        f'<polyline points="{line}" fill="none" stroke="#0b5394" stroke-width="2"/></svg>')
