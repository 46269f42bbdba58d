"""Charts drawn on the server as inline SVG: no JavaScript, readable by screen readers.

Each chart is an ``<svg role="img">`` labelled by its own ``<title>`` and ``<desc>``, every bar
carries its value as text (colour is never the only cue), and the page shows the same figures
in a table next to it. The colours reach 3:1 against white (WCAG 1.4.11).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Dark enough against white for graphical objects, and distinct from each other.
SERIES_COLOURS = ("#1d5fa8", "#b34700", "#2f7d32")
AXIS_COLOUR = "#505a5f"
TEXT_COLOUR = "#0b0c0c"


@dataclass(frozen=True)
class Series:
    """One named row of values, drawn in one colour."""

    name: str
    values: Sequence[float]


def axis(highest: float, most_ticks: int = 5) -> tuple[float, float]:
    """The top of a count axis and its tick step: a step of 1, 2 or 5 times a power of ten
    (whole numbers only), with at most ``most_ticks`` steps up to a top of at least ``highest``."""
    step = 1.0
    while highest > step * most_ticks:
        for factor in (2, 2.5, 2):  # 1 -> 2 -> 5 -> 10 -> 20 -> 50 ...
            step *= factor
            if highest <= step * most_ticks:
                break
    top = max(step, math.ceil(highest / step) * step)
    return top, step


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _open(chart_id: str, title: str, desc: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'font-family="system-ui, sans-serif" font-size="12" fill="{TEXT_COLOUR}">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]


def column_chart(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    unit: str,
    label_every: int = 1,
) -> Markup:
    """Vertical bars, one per label (days, score bands), with a value axis from zero."""
    width, height = 720, 280
    left, right, top, bottom = 56, 12, 16, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value, step = axis(max(values, default=0))
    slot = plot_w / max(len(values), 1)
    bar_w = max(slot * 0.7, 1)
    parts = _open(chart_id, title, desc, width, height)
    for tick in range(round(top_value / step) + 1):
        tick_value = step * tick
        y = top + plot_h - plot_h * tick_value / top_value
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#dee0e2" aria-hidden="true"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" aria-hidden="true">{_number(tick_value)}</text>'
        )
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_h = plot_h * value / top_value
        x = left + slot * index + (slot - bar_w) / 2
        y = top + plot_h - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{bar_h:.1f}" fill="{SERIES_COLOURS[0]}">'
            f"<title>{escape(label)}: {_number(value)} {escape(unit)}</title></rect>"
        )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                f'aria-hidden="true">{escape(label)}</text>'
            )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="{AXIS_COLOUR}" aria-hidden="true"/>'
    )
    parts.append(
        f'<text x="{left}" y="{height - 8}" aria-hidden="true">{escape(unit.capitalize())} '
        f"(highest {_number(max(values, default=0))})</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def grouped_bars(
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[Series],
) -> Markup:
    """Horizontal bars: one group per category, one bar per series, each labelled with its value."""
    row_h, gap, label_w, width = 18, 14, 240, 720
    legend_h = 28
    group_h = row_h * len(series) + gap
    height = legend_h + group_h * max(len(categories), 1) + 8
    top_value, _step = axis(max((v for s in series for v in s.values), default=0))
    plot_w = width - label_w - 80
    parts = _open(chart_id, title, desc, width, height)
    x = 0
    for index, one in enumerate(series):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        parts.append(
            f'<rect x="{x}" y="6" width="14" height="14" fill="{colour}" aria-hidden="true"/>'
            f'<text x="{x + 20}" y="17" aria-hidden="true">{escape(one.name)}</text>'
        )
        x += 30 + 8 * len(one.name)
    for group, category in enumerate(categories):
        y0 = legend_h + group * group_h
        shown = category if len(category) <= 38 else category[:37] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y0 + row_h * len(series) / 2 + 4:.1f}" text-anchor="end" '
            f'aria-hidden="true">{escape(shown)}</text>'
        )
        for index, one in enumerate(series):
            value = one.values[group]
            bar_w = plot_w * value / top_value
            y = y0 + index * row_h
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            parts.append(
                f'<rect x="{label_w}" y="{y + 2}" width="{bar_w:.1f}" height="{row_h - 4}" fill="{colour}">'
                f"<title>{escape(category)}, {escape(one.name)}: {_number(value)}</title></rect>"
                f'<text x="{label_w + bar_w + 6:.1f}" y="{y + row_h - 5}" aria-hidden="true">{_number(value)}</text>'
            )
    parts.append(
        f'<line x1="{label_w}" y1="{legend_h}" x2="{label_w}" y2="{height - 8}" stroke="{AXIS_COLOUR}" '
        'aria-hidden="true"/>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
