"""Tiny inline-SVG charts for the audit report: no plotting library, no network, no scripts.

Each function returns one ``<svg>`` element sized by its content. Numbers are escaped text; every
chart has a ``<title>`` so screen readers and the browser test can name it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#3b6ea8", "#d9822b", "#5a9e4b", "#b0413e", "#7d5ba6", "#8c6d31", "#4c9fa8")


def _finite(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def grouped_bars(
    title: str,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    width: int = 560,
    maximum: float = 1.0,
) -> str:
    """Bars per group (x) for each series (colour), values in [0, maximum]."""
    height, left, bottom, top = 220, 40, 40, 30
    plot_w, plot_h = width - left - 10, height - bottom - top
    slot = plot_w / max(1, len(groups))
    bar = slot * 0.8 / max(1, len(series))
    parts = [_axes(left, top, plot_w, plot_h, maximum)]
    for g, group in enumerate(groups):
        x0 = left + g * slot + slot * 0.1
        for s, (name, values) in enumerate(series.items()):
            value = values[g]
            if not _finite(value):
                continue
            h = plot_h * min(float(value or 0.0), maximum) / maximum
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{max(h, 0.5):.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(group)} {escape(name)}: {float(value or 0):.3f}</title></rect>"
            )
        label = group if len(group) <= 14 else group[:13] + "…"
        parts.append(
            f'<text x="{left + g * slot + slot / 2:.1f}" y="{top + plot_h + 14}" '
            f'text-anchor="middle" font-size="10">{escape(label)}</text>'
        )
    parts.append(_legend(list(series), left, height - 8))
    return _svg(title, width, height, parts)


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
) -> str:
    """Horizontal bars with confidence-interval whiskers: (label, value, low, high).

    The value axis along the bottom has tick labels, and every bar is labelled with its value at
    the right, so a bar of 0 still reads as "0.000" rather than as nothing drawn.
    """
    row_h, left, top, value_w = 22, 220, 24, 48
    axis_y = top + row_h * len(rows) + 2
    height = axis_y + 22
    values = [abs(float(z or 0.0)) for _, v, lo, hi in rows for z in (v, lo, hi) if _finite(z)]
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
        shown = f"{float(value or 0):.3f}" if _finite(value) else "n/a"
        if _finite(value):
            bar_width = max(x(abs(float(value or 0))) - left, 1.5)
            parts.append(
                f'<rect x="{left}" y="{y + 3}" width="{bar_width:.1f}"'
                f' height="{row_h - 8}" fill="{PALETTE[0]}"><title>{escape(label)}: '
                f"{shown}</title></rect>"
            )
        parts.append(
            f'<text class="value" x="{width - 20}" y="{y + 13}" text-anchor="end" '
            f'font-size="10">{shown}</text>'
        )
        if _finite(low) and _finite(high):
            lo, hi = x(abs(float(low or 0))), x(abs(float(high or 0)))
            parts.append(
                f'<line x1="{min(lo, hi):.1f}" y1="{y + row_h / 2}" x2="{max(lo, hi):.1f}" '
                f'y2="{y + row_h / 2}" stroke="#111" stroke-width="1.5"/>'
            )
    if limit is not None:
        parts.append(
            f'<line x1="{x(limit):.1f}" y1="{top - 4}" x2="{x(limit):.1f}" y2="{axis_y}" '
            f'stroke="{PALETTE[3]}" stroke-dasharray="4 3"><title>limit {limit}</title></line>'
        )
    return _svg(title, width, height, parts)


def reliability(
    title: str, curves: Mapping[str, Sequence[tuple[float, float]]], *, size: int = 300
) -> str:
    """Reliability diagram: mean confidence (x) against observed frequency (y), per curve."""
    left, top, plot = 40, 24, size - 64
    parts = [_axes(left, top, plot, plot, 1.0)]
    parts.append(
        f'<line x1="{left}" y1="{top + plot}" x2="{left + plot}" y2="{top}" stroke="#999" '
        'stroke-dasharray="3 3"><title>perfect calibration</title></line>'
    )
    for c, (name, points) in enumerate(curves.items()):
        shown = [(px, py) for px, py in points if _finite(px) and _finite(py)]
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
    parts.append(_legend(list(curves), left, size - 6))
    return _svg(title, size + 120, size + 10, parts)


def _axes(left: float, top: float, width: float, height: float, maximum: float) -> str:
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


def _legend(names: Sequence[str], left: float, y: float) -> str:
    parts, x = [], left
    for i, name in enumerate(names):
        parts.append(
            f'<rect x="{x}" y="{y - 8}" width="9" height="9" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 12}" y="{y}" font-size="10">{escape(name)}</text>'
        )
        x += 18 + 6.5 * len(name)
    return "".join(parts)


def _svg(title: str, width: float, height: float, parts: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="sans-serif"><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )
