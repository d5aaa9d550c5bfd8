"""Tiny inline-SVG charts for the audit report: no plotting library, no network, no scripts.

Each function returns one ``<svg>`` element (:func:`ethos.html.svg`) sized by its content. Text
is escaped; every chart has a ``<title>`` so screen readers and the browser test can name it.
:func:`axes` and :func:`legend` are shared with the serving dashboard's line charts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ethos.html import Html, clip, escape, fixed, real, svg

PALETTE = ("#3b6ea8", "#d9822b", "#5a9e4b", "#b0413e", "#7d5ba6", "#8c6d31", "#4c9fa8")


def grouped_bars(
    title: str,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    width: int = 560,
    maximum: float = 1.0,
) -> Html:
    """Bars per group (x) for each series (colour), values in [0, maximum]."""
    height, left, bottom, top = 220, 40, 40, 30
    plot_w, plot_h = width - left - 10, height - bottom - top
    slot = plot_w / max(1, len(groups))
    bar = slot * 0.8 / max(1, len(series))
    parts = [axes(left, top, plot_w, plot_h, maximum)]
    for g, group in enumerate(groups):
        x0 = left + g * slot + slot * 0.1
        for s, (name, values) in enumerate(series.items()):
            value = real(values[g])
            if value is None:
                continue
            h = plot_h * min(value, maximum) / maximum
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{max(h, 0.5):.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(group)} {escape(name)}: {fixed(value)}</title></rect>"
            )
        parts.append(
            f'<text x="{left + g * slot + slot / 2:.1f}" y="{top + plot_h + 14}" '
            f'text-anchor="middle" font-size="10">{escape(clip(group, 14))}</text>'
        )
    parts.append(legend(list(series), left, height - 8))
    return svg(title, width, height, parts)


def nice_ticks(maximum: float, *, target: int = 5) -> list[float]:
    """Round tick values from 0 up to ``maximum``: a step of 1, 2 or 5 times a power of ten,
    the one nearest to ``maximum / (target - 1)`` (Heckbert, "Nice numbers for graph labels",
    Graphics Gems 1990: fractions below 1.5 round to 1, below 3 to 2, below 7 to 5, else 10)."""
    if not maximum > 0 or not math.isfinite(maximum):
        return [0.0]
    raw = maximum / max(1, target - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    fraction = raw / power
    nice = 1.0 if fraction < 1.5 else 2.0 if fraction < 3 else 5.0 if fraction < 7 else 10.0
    step = nice * power
    count = math.floor(maximum / step + 1e-9)
    return [round(i * step, 12) for i in range(count + 1)]


def interval_bars(
    title: str,
    rows: Sequence[tuple[str, float | None, float | None, float | None]],
    *,
    width: int = 560,
    limit: float | None = None,
) -> Html:
    """Horizontal bars with confidence-interval whiskers: (label, value, low, high).

    The value axis along the bottom has tick labels, and every bar is labelled with its value at
    the right, so a bar of 0 still reads as "0.000" rather than as nothing drawn.
    """
    row_h, left, top, value_w = 22, 220, 24, 48
    axis_y = top + row_h * len(rows) + 2
    height = axis_y + 22
    values = [abs(z) for _, *zs in rows for z in map(real, zs) if z is not None]
    maximum = max([1e-9, *values, limit or 0.0]) * 1.1
    plot_w = width - left - 20 - value_w

    def x(value: float) -> float:
        return left + plot_w * value / maximum

    parts = []
    for tick in nice_ticks(maximum):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{top - 4}" x2="{x(tick):.1f}" y2="{axis_y}" '
            f'stroke="#eee"/><line x1="{x(tick):.1f}" y1="{axis_y}" x2="{x(tick):.1f}" '
            f'y2="{axis_y + 4}" stroke="#444"/><text class="tick" x="{x(tick):.1f}" '
            f'y="{axis_y + 15}" text-anchor="middle" font-size="9">{tick:g}</text>'
        )
    parts.append(f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{axis_y}" stroke="#444"/>')
    parts.append(
        f'<line class="axis" x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" '
        'stroke="#444"/>'
    )
    for i, (label, value, low, high) in enumerate(rows):
        y = top + i * row_h
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" font-size="11">'
            f"{escape(label)}</text>"
        )
        shown, number = fixed(value), real(value)
        if number is not None:
            bar_width = max(x(abs(number)) - left, 1.5)
            parts.append(
                f'<rect x="{left}" y="{y + 3}" width="{bar_width:.1f}"'
                f' height="{row_h - 8}" fill="{PALETTE[0]}"><title>{escape(label)}: '
                f"{shown}</title></rect>"
            )
        parts.append(
            f'<text class="value" x="{width - 20}" y="{y + 13}" text-anchor="end" '
            f'font-size="10">{shown}</text>'
        )
        bounds = real(low), real(high)
        if bounds[0] is not None and bounds[1] is not None:
            lo, hi = x(abs(bounds[0])), x(abs(bounds[1]))
            parts.append(
                f'<line x1="{min(lo, hi):.1f}" y1="{y + row_h / 2}" x2="{max(lo, hi):.1f}" '
                f'y2="{y + row_h / 2}" stroke="#111" stroke-width="1.5"/>'
            )
    if limit is not None:
        parts.append(
            f'<line x1="{x(limit):.1f}" y1="{top - 4}" x2="{x(limit):.1f}" y2="{axis_y}" '
            f'stroke="{PALETTE[3]}" stroke-dasharray="4 3"><title>limit {limit}</title></line>'
        )
    return svg(title, width, height, parts)


def reliability(
    title: str, curves: Mapping[str, Sequence[tuple[float, float]]], *, size: int = 300
) -> Html:
    """Reliability diagram: mean confidence (x) against observed frequency (y), per curve."""
    left, top, plot = 40, 24, size - 64
    parts = [axes(left, top, plot, plot, 1.0)]
    parts.append(
        f'<line x1="{left}" y1="{top + plot}" x2="{left + plot}" y2="{top}" stroke="#999" '
        'stroke-dasharray="3 3"><title>perfect calibration</title></line>'
    )
    for c, (name, points) in enumerate(curves.items()):
        shown = [(px, py) for px, py in points if real(px) is not None and real(py) is not None]
        if not shown:
            continue
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{left + plot * px:.1f},{top + plot * (1 - py):.1f}"
            for i, (px, py) in enumerate(shown)
        )
        colour = PALETTE[c % len(PALETTE)]
        parts.append(
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{escape(name)}</title></path>"
        )
        for px, py in shown:
            parts.append(
                f'<circle cx="{left + plot * px:.1f}" cy="{top + plot * (1 - py):.1f}" r="2.5" '
                f'fill="{colour}"/>'
            )
    parts.append(legend(list(curves), left, size - 6))
    return svg(title, size + 120, size + 10, parts)


def axes(left: float, top: float, width: float, height: float, maximum: float) -> str:
    """A y axis from 0 to ``maximum`` (five ticks, light grid lines) and an x axis, for a plot
    whose area starts at (``left``, ``top``)."""
    ticks = "".join(
        f'<text x="{left - 4}" y="{top + height * (1 - f) + 3:.1f}" text-anchor="end" '
        f'font-size="9">{maximum * f:.2g}</text>'
        f'<line x1="{left}" y1="{top + height * (1 - f):.1f}" x2="{left + width}" '
        f'y2="{top + height * (1 - f):.1f}" stroke="#eee"/>'
        for f in (0, 0.25, 0.5, 0.75, 1.0)
    )
    return (
        ticks
        + f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + height}" stroke="#444"/>'
        + f'<line x1="{left}" y1="{top + height}" x2="{left + width}" y2="{top + height}" '
        'stroke="#444"/>'
    )


def legend(names: Sequence[str], left: float, y: float) -> str:
    """A row of palette swatches and names from ``left`` along the baseline ``y``."""
    parts, x = [], left
    for i, name in enumerate(names):
        parts.append(
            f'<rect x="{x}" y="{y - 8}" width="9" height="9" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 12}" y="{y}" font-size="10">{escape(name)}</text>'
        )
        x += 18 + 6.5 * len(name)
    return "".join(parts)
