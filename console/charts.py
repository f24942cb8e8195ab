"""Charts as server-rendered SVG: no script, readable by screen readers (title, description, table).

Each chart is an ``<svg role="img">`` with a <title> and a text description of its numbers, so a
chart never carries information that is not also in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, BAR_HEIGHT, GAP, LABEL_WIDTH = 560, 22, 8, 170
PALETTE = ("#1f5fa8", "#a8471f", "#2e7d32", "#6a1b9a", "#8d6e00", "#00695c")


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], *, maximum: float | None = None, unit: str = ""
) -> Markup:
    """Horizontal bars, one per (label, value), each with its value written beside it."""
    top = maximum if maximum is not None else max([v for _, v in bars] + [1.0])
    height = len(bars) * (BAR_HEIGHT + GAP) + GAP
    span = WIDTH - LABEL_WIDTH - 70
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-labelledby="{_id(title)}-t {_id(title)}-d">',
        f'<title id="{_id(title)}-t">{escape(title)}</title>',
        f'<desc id="{_id(title)}-d">{escape("; ".join(f"{label}: {_fmt(v)}{unit}" for label, v in bars))}</desc>',
    ]
    for index, (label, value) in enumerate(bars):
        y = GAP + index * (BAR_HEIGHT + GAP)
        length = max(0.0, min(1.0, value / top if top else 0.0)) * span
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 16}" text-anchor="end" class="chart-label">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
            f'fill="{PALETTE[index % len(PALETTE)]}"/>'
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 16}" class="chart-value">{_fmt(value)}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(title: str, points: Sequence[tuple[str, float]], *, maximum: float = 100.0) -> Markup:
    """A line over (label, value) points, oldest first, with the first and last labels on the axis."""
    height, pad = 200, 36
    if not points:
        return Markup(f'<p class="empty">{escape(title)}: no data yet.</p>')
    step = (WIDTH - 2 * pad) / max(1, len(points) - 1)

    def y_of(value: float) -> float:
        return height - pad - (max(0.0, min(value, maximum)) / maximum) * (height - 2 * pad)

    coords = [(pad + i * step, y_of(v)) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1f5fa8"/>' for x, y in coords)
    first, last = points[0], points[-1]
    return Markup(
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-labelledby="{_id(title)}-t {_id(title)}-d">'
        f'<title id="{_id(title)}-t">{escape(title)}</title>'
        f'<desc id="{_id(title)}-d">{escape(f"{len(points)} points from {first[0]} ({_fmt(first[1])}) to {last[0]} ({_fmt(last[1])})")}</desc>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{WIDTH - pad}" y2="{height - pad}" stroke="#555"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#555"/>'
        f'<text x="{pad - 4}" y="{pad + 4}" text-anchor="end" class="chart-label">{_fmt(maximum)}</text>'
        f'<text x="{pad - 4}" y="{height - pad}" text-anchor="end" class="chart-label">0</text>'
        f'<polyline points="{path}" fill="none" stroke="#1f5fa8" stroke-width="2"/>{dots}'
        f'<text x="{pad}" y="{height - 10}" class="chart-label">{escape(first[0])}</text>'
        f'<text x="{WIDTH - pad}" y="{height - 10}" text-anchor="end" class="chart-label">{escape(last[0])}</text>'
        "</svg>"
    )


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _id(title: str) -> str:
    return "c" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())[:40]
