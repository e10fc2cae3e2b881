"""Charts as server-rendered SVG: stacked bars, no JavaScript, no library, each with its text alternative.

Pure (no I/O): data in, markup out. Every chart carries a <title> and a <desc> that states every figure, and the
pages print the same figures in a table beside it, so a screen reader and an auditor's printout lose nothing.
"""

import dataclasses
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

# Okabe-Ito: told apart with the common colour-vision deficiencies
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 44, 40, 12


@dataclasses.dataclass(frozen=True)
class Chart:
    """Stacked bars: one bar per category, one segment per series."""

    title: str
    categories: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]  # (name, one value per category)
    unit: str = ""
    scale: float | None = None  # the axis' top (100 for a share); else the tallest bar

    @property
    def empty(self) -> bool:
        return not any(self.total(i) for i in range(len(self.categories)))

    def total(self, i: int) -> float:
        return sum(values[i] for _, values in self.series)

    def describe(self) -> str:
        """Every figure in words: the text alternative."""
        if self.empty:
            return f"{self.title}: no data yet."
        parts = []
        for i, category in enumerate(self.categories):
            figures = ", ".join(f"{name} {_num(values[i])}{self.unit}" for name, values in self.series if values[i])
            parts.append(f"{category}: {figures or 'none'}")
        return f"{self.title}. " + "; ".join(parts) + "."


def chart(title: str, rows: Sequence[tuple[str, str, float]], *, unit: str = "",
          categories: Sequence[str] | None = None, scale: float | None = None) -> Chart:
    """A chart from (category, series, value) rows; categories in the given order (else as first seen)."""
    cats = list(categories) if categories is not None else list(dict.fromkeys(c for c, _, _ in rows))
    names = sorted({s for _, s, _ in rows})
    values = {(c, s): v for c, s, v in rows}
    return Chart(title, tuple(cats), tuple((n, tuple(float(values.get((c, n), 0)) for c in cats)) for n in names),
                 unit, scale)


def svg(c: Chart, *, ident: str) -> Markup:
    """The chart as inline SVG markup, its title and description referenced by aria-labelledby."""
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    if c.empty:
        return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} 40" role="img" '
                      f'aria-labelledby="{ident}-t {ident}-d"><title id="{ident}-t">{escape(c.title)}</title>'
                      f'<desc id="{ident}-d">{escape(c.describe())}</desc>'
                      f'<text x="{LEFT}" y="24" font-size="13">No data yet.</text></svg>')
    top = c.scale or max(c.total(i) for i in range(len(c.categories)))
    step = plot_w / max(len(c.categories), 1)
    bar = min(step * 0.7, 48)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 24}" '
           f'role="img" aria-labelledby="{ident}-t {ident}-d">',
           f'<title id="{ident}-t">{escape(c.title)}</title><desc id="{ident}-d">{escape(c.describe())}</desc>',
           f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" stroke="#888"/>',
           f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11">{_num(top)}{escape(c.unit)}</text>',
           f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" font-size="11">0</text>']
    for i, category in enumerate(c.categories):
        x, y = LEFT + i * step + (step - bar) / 2, float(TOP + plot_h)
        for k, (_, values) in enumerate(c.series):
            h = values[i] / top * plot_h
            if h > 0:
                y -= h
                out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                           f'fill="{PALETTE[k % len(PALETTE)]}"/>')
        if len(c.categories) <= 16 or i % 2 == 0:
            out.append(f'<text x="{x + bar / 2:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" '
                       f'font-size="10">{escape(category)}</text>')
    x = LEFT
    for k, (name, _) in enumerate(c.series):
        out.append(f'<rect x="{x}" y="{HEIGHT + 8}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>'
                   f'<text x="{x + 14}" y="{HEIGHT + 17}" font-size="11">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    out.append("</svg>")
    return Markup("".join(out))


def _num(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
