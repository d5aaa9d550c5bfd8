"""The sweep page: Pareto fronts and every point, as one self-contained HTML file.

Drawn from sweep.json alone (so it can be redrawn from the file). Two scatter plots, accuracy
against the fairness gap and accuracy against ε, each with its Pareto front as a step line and
every point labelled with its grid values and W; a bar per point for W against the policy's
threshold; and a table of all points with their decisions and links to their audit reports.
A point whose model is not informative (``"informative": false``: no better than a constant or
chance) is drawn hollow, labelled "not informative", listed as such, and never ringed or joined
into a front, whatever sweep.json's ``fronts`` say.
Inline SVG and styles, no script, no network request, like the audit report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ethos.sweep.pareto import staircase

DECISION_COLOURS = {"PASS": "#2e7d32", "REVIEW": "#e69b00", "FAIL": "#c62828"}
OTHER_COLOUR = "#777"
FRONT_COLOUR = "#3b6ea8"
NOT_INFORMATIVE = "not informative"
CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.text{text-align:left}
.status{display:inline-block;color:#fff;border-radius:4px;padding:.1rem .5rem;font-weight:600}
.note{color:#555;font-size:.85rem}.figure{margin:.8rem 0}.error{color:#c62828;max-width:28rem}
"""
WIDTH, HEIGHT = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 60, 30, 30, 50


@dataclass(frozen=True)
class Mark:
    """One point of a scatter plot: position, label, colour, and whether it is on the front."""

    x: float
    y: float
    label: str
    tooltip: str
    colour: str
    on_front: bool
    informative: bool = True


def render_page(document: dict[str, Any]) -> str:
    """The whole page as one HTML string, from the sweep.json document."""
    points = document.get("points", [])
    title = f"ethos sweep: {len(points)} points under policy {document.get('policy', '?')}"
    grid = "; ".join(
        f"{a['name']} = [{', '.join(_value(v) for v in a['values'])}]"
        for a in document.get("grid", [])
    )
    metrics = document.get("metrics", {})
    names = short_names([a["key"] for a in document.get("grid", [])])
    labelled = [{**p, "label": _short_label(p, names)} for p in points]
    done = [p for p in labelled if p.get("status") == "done"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='note'>grid: {escape(grid)}<br>config {escape(str(document.get('config')))}"
        f"; started {escape(str(document.get('created_utc')))}, updated "
        f"{escape(str(document.get('updated_utc')))}; {len(done)} of {len(points)} points "
        "finished. Every point is a governed run with its own ledger entries.</p>",
        "<h2>Accuracy against the fairness gap</h2>",
        _figure(
            _front_chart(
                done,
                "accuracy vs fairness gap",
                x_field="fairness_gap",
                x_label=f"fairness gap: {metrics.get('fairness_gap', '')} (lower is fairer)",
                front="accuracy_vs_fairness_gap",
            ),
            "Each dot is a run; a ring marks the Pareto front (no other run is both more accurate "
            "and fairer), joined by the step line. Colour is the gate's decision. A hollow dot is "
            "a model that is not informative (no better than a constant or chance): its gap says "
            "nothing, so it is never on the front.",
        ),
        "<h2>Accuracy against privacy (ε)</h2>",
        _figure(
            _front_chart(
                done,
                "accuracy vs epsilon",
                x_field="epsilon",
                x_label="ε, differential privacy budget (log scale; smaller is more private; "
                "∞ = trained without privacy)",
                front="accuracy_vs_epsilon",
            ),
            "ε is the run's planned budget from its manifest; a run without one is non-private "
            "and drawn at ∞.",
        ),
        "<h2>Policy score W</h2>",
        _figure(_welfare_chart(labelled, document.get("threshold")), _welfare_caption(document)),
        "<h2>All points</h2>",
        _table(points, document.get("grid", [])),
        "</body></html>",
    ]
    return "".join(parts)


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """The last part of each key (``lambda`` for ``train.fairness.lambda``) where that is
    unambiguous within the grid, else the key without its ``train.`` prefix."""
    lasts = [k.rsplit(".", 1)[-1] for k in keys]
    return {
        k: last if lasts.count(last) == 1 else k.removeprefix("train.")
        for k, last in zip(keys, lasts, strict=True)
    }


def _short_label(point: dict[str, Any], names: dict[str, str]) -> str:
    values = point.get("values", {})
    return ", ".join(f"{names.get(k, k)}={_value(v)}" for k, v in values.items())


def _front_chart(
    done: list[dict[str, Any]], title: str, *, x_field: str, x_label: str, front: str
) -> str:
    marks = []
    for p in done:
        x = _number(p.get(x_field))
        if x_field == "epsilon" and x is None and not p.get("private"):
            x = math.inf
        y = _number(p.get("accuracy"))
        if x is None or y is None:
            continue
        welfare = _number(p.get("welfare"))
        w = "n/a" if welfare is None else f"{welfare:.2f}"
        informative = p.get("informative") is not False
        flag = "" if informative else f" · {NOT_INFORMATIVE}"
        marks.append(
            Mark(
                x,
                y,
                f"{p['label']} · W {w}{flag}",
                f"#{p['index'] + 1} {p['label']}: accuracy {y:.3f}, {x_field} {_value(x)}, "
                f"W {w}, {p.get('decision')}{flag}",
                DECISION_COLOURS.get(str(p.get("decision")), OTHER_COLOUR),
                informative and front in p.get("fronts", []),
                informative,
            )
        )
    missing = len(done) - len(marks)
    return scatter(
        title,
        marks,
        x_label=x_label,
        y_label="accuracy (test)",
        log_x=x_field == "epsilon",
        note=f"{missing} finished run(s) without this metric are not drawn" if missing else "",
    )


def scatter(
    title: str,
    marks: Sequence[Mark],
    *,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    note: str = "",
) -> str:
    """A labelled scatter plot (x lower-is-better, y higher-is-better) with its front's steps.

    ``log_x`` puts x on a log scale and gives ``inf`` its own column at the right edge.
    """
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    to_x, x_ticks = _x_scale([m.x for m in marks], LEFT, plot_w, log=log_x)
    to_y, y_ticks = _linear([m.y for m in marks], TOP + plot_h, -plot_h, floor=0.0, ceiling=1.0)
    parts = [_frame(plot_w, plot_h, x_ticks, y_ticks, to_x, to_y, x_label, y_label)]
    if not marks:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
            'font-size="13" fill="#777">no finished run to draw yet</text>'
        )
    front = [m for m in marks if m.on_front and m.informative]
    line = staircase([m.x for m in front], [m.y for m in front], maximize_x=False, maximize_y=True)
    if line:
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{to_x(x):.1f},{to_y(y):.1f}" for i, (x, y) in enumerate(line)
        )
        parts.append(
            f'<path d="{path}" fill="none" stroke="{FRONT_COLOUR}" stroke-width="2" '
            f'stroke-dasharray="6 3"><title>Pareto front ({len(front)} runs)</title></path>'
        )
    for i, m in enumerate(marks):
        cx, cy = to_x(m.x), to_y(m.y)
        parts.append(_dot(cx, cy, m))
        right_half = cx > LEFT + plot_w * 0.6
        dy = -9 if i % 2 == 0 else 15
        parts.append(
            f'<text x="{cx + (-9 if right_half else 9):.1f}" y="{cy + dy:.1f}" font-size="10" '
            f'text-anchor="{"end" if right_half else "start"}">{escape(_clip(m.label, 60))}</text>'
        )
    parts.append(_legend(LEFT + plot_w, TOP - 10))
    if note:
        parts.append(
            f'<text x="{LEFT}" y="{TOP - 10}" font-size="10" fill="#777">{escape(note)}</text>'
        )
    return _svg(title, WIDTH, HEIGHT, parts)


def _dot(cx: float, cy: float, m: Mark) -> str:
    """A point: filled in its decision's colour, ringed on the front; hollow and dashed in that
    colour when its model is not informative (it can never be on a front)."""
    if not m.informative:
        style = f'fill="#fff" stroke="{m.colour}" stroke-width="2" stroke-dasharray="2 2"'
        css = ' class="not-informative"'
    elif m.on_front:
        style, css = f'fill="{m.colour}" stroke="{FRONT_COLOUR}" stroke-width="2.5"', ""
    else:
        style, css = f'fill="{m.colour}" stroke="#fff"', ""
    return (
        f'<circle{css} cx="{cx:.1f}" cy="{cy:.1f}" r="6" {style}>'
        f"<title>{escape(m.tooltip)}</title></circle>"
    )


def _legend(right: float, y: float) -> str:
    entries = [*DECISION_COLOURS.items(), ("on the front", "#fff"), (NOT_INFORMATIVE, "hollow")]
    parts, x = [], right
    for name, colour in reversed(entries):
        x -= 14 + 6 * len(name)
        if colour == "hollow":
            shape = f'fill="#fff" stroke="{OTHER_COLOUR}" stroke-width="1.5" stroke-dasharray="2 2"'
        elif colour == "#fff":
            shape = f'fill="#fff" stroke="{FRONT_COLOUR}" stroke-width="2"'
        else:
            shape = f'fill="{colour}" stroke="none"'
        parts.append(
            f'<circle cx="{x + 4}" cy="{y - 3}" r="4" {shape}/>'
            f'<text x="{x + 11}" y="{y}" font-size="10">{escape(name)}</text>'
        )
    return "".join(parts)


def _welfare_chart(points: list[dict[str, Any]], threshold: Any) -> str:
    from ethos.audit import svg  # the audit report's bar chart, with the threshold as its limit

    rows = [
        (_clip(f"#{p['index'] + 1} {p['label']}", 34), _number(p.get("welfare")), None, None)
        for p in points
    ]
    limit = _number(threshold)
    return svg.interval_bars("policy score W per point", rows, width=WIDTH, limit=limit)


def _welfare_caption(document: dict[str, Any]) -> str:
    threshold = _number(document.get("threshold"))
    shown = "?" if threshold is None else f"{threshold:g}"
    return (
        f"W = Σ wᵢFᵢ under policy {document.get('policy')}; the dashed line is its PASS threshold "
        f"({shown}). A broken constraint fails a run whatever its W; runs without a bar did not "
        "finish."
    )


def _table(points: list[dict[str, Any]], grid: list[dict[str, Any]]) -> str:
    names = [a["name"] for a in grid]
    keys = [a["key"] for a in grid]
    header = ["#", *names, "status", "accuracy", "accuracy by group", "fairness gap", "ε", "W"]
    header += ["decision", "informative", "fronts"]
    header += ["run", "error"]
    rows = []
    for p in points:
        values = p.get("values", {})
        decision = p.get("decision")
        badge = (
            f'<span class="status" style="background:{DECISION_COLOURS[decision]}">'
            f"{escape(decision)}</span>"
            if decision in DECISION_COLOURS
            else escape(str(decision or "-"))
        )
        if p.get("status") != "done":
            epsilon = "-"
        elif p.get("private"):
            epsilon = _value(p.get("epsilon"))
        else:
            epsilon = "∞ (non-private)"
        run = p.get("run_dir")
        link = (
            f'<a href="{escape(run + "/audit/report.html")}">{escape(str(p.get("run_id")))}</a>'
            if run and p.get("status") == "done"
            else escape(str(run or "-"))
        )
        informative = p.get("informative")
        fronts = ", ".join(
            label
            for name, label in (
                ("accuracy_vs_fairness_gap", "fairness"),
                ("accuracy_vs_epsilon", "ε"),
            )
            if name in p.get("fronts", []) and informative is not False
        )
        if informative is False:
            fronts = f"none ({NOT_INFORMATIVE})"
        verdict = (
            "-"
            if informative is None
            else "yes"
            if informative is not False
            else f"<b>no: {NOT_INFORMATIVE}</b>"
        )
        cells = [
            str(p["index"] + 1),
            *(escape(_value(values.get(k))) for k in keys),
            escape(str(p.get("status"))),
            _num(p.get("accuracy")),
            escape(
                " · ".join(
                    f"{g} {v:.3f}"
                    for g, v in (p.get("group_accuracy") or {}).items()
                    if isinstance(v, int | float)
                )
                or "-"
            ),
            _num(p.get("fairness_gap")),
            escape(epsilon),
            _num(p.get("welfare")),
            badge,
            verdict,
            escape(fronts or "-"),
            link,
            f'<span class="error">{escape(str(p.get("error") or ""))}</span>',
        ]
        left = {len(cells) - 2, len(cells) - 1}  # run link and error read as text
        rows.append(
            "<tr>"
            + "".join(
                f"<td class='text'>{c}</td>" if i in left else f"<td>{c}</td>"
                for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return (
        f"<table class='points'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _x_scale(
    values: Sequence[float], start: float, length: float, *, log: bool
) -> tuple[Callable[[float], float], list[tuple[float, str]]]:
    """Map x to pixels; on a log scale ``inf`` gets its own column at the right edge."""
    if not log:
        return _linear(values, start, length, floor=0.0, ceiling=None)
    finite = sorted({v for v in values if math.isfinite(v) and v > 0})
    has_inf = any(math.isinf(v) and v > 0 for v in values)
    span = length * (0.8 if has_inf else 1.0)
    inf_at = start + (length * 0.92 if finite else length / 2)
    if finite:
        lo, hi = math.log10(finite[0]), math.log10(finite[-1])
        pad = max((hi - lo) * 0.08, 0.15)
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = 0.0, 1.0

    def to_px(value: float) -> float:
        if math.isinf(value):
            return inf_at
        return start + span * (math.log10(max(value, 1e-12)) - lo) / (hi - lo)

    ticks = [(v, f"{v:g}") for v in finite[:12]]
    if has_inf or not finite:
        ticks.append((math.inf, "∞"))
    return to_px, ticks


def _linear(
    values: Sequence[float],
    start: float,
    length: float,
    *,
    floor: float | None,
    ceiling: float | None,
) -> tuple[Callable[[float], float], list[tuple[float, str]]]:
    """Map a padded range of ``values`` onto ``length`` pixels from ``start`` (length < 0: up)."""
    shown = [v for v in values if math.isfinite(v)]
    lo, hi = (min(shown), max(shown)) if shown else (0.0, 1.0)
    pad = max((hi - lo) * 0.1, 0.02)
    lo, hi = lo - pad, hi + pad
    if floor is not None:
        lo = max(lo, floor)
    if ceiling is not None:
        hi = min(hi, ceiling)
    if hi <= lo:
        hi = lo + 1.0

    def to_px(value: float) -> float:
        return start + length * (value - lo) / (hi - lo)

    ticks = [(lo + (hi - lo) * f, f"{lo + (hi - lo) * f:.3g}") for f in (0, 0.25, 0.5, 0.75, 1.0)]
    return to_px, ticks


def _frame(
    plot_w: float,
    plot_h: float,
    x_ticks: list[tuple[float, str]],
    y_ticks: list[tuple[float, str]],
    to_x: Callable[[float], float],
    to_y: Callable[[float], float],
    x_label: str,
    y_label: str,
) -> str:
    bottom = TOP + plot_h
    parts = []
    for value, text in y_ticks:
        y = to_y(value)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 5}" y="{y + 3:.1f}" text-anchor="end" font-size="10">'
            f"{escape(text)}</text>"
        )
    for value, text in x_ticks:
        x = to_x(value)
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" font-size="10">'
            f"{escape(text)}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#444"/>'
        f'<line x1="{LEFT}" y1="{bottom}" x2="{LEFT + plot_w}" y2="{bottom}" stroke="#444"/>'
        f'<text x="{LEFT + plot_w / 2}" y="{bottom + 34}" text-anchor="middle" font-size="11">'
        f"{escape(_clip(x_label, 110))}</text>"
        f'<text x="14" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="11" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    return "".join(parts)


def _svg(title: str, width: float, height: float, parts: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="sans-serif"><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )


def _figure(content: str, caption: str) -> str:
    return (
        f'<figure class="figure chart">{content}'
        f'<figcaption class="note">{escape(caption)}</figcaption></figure>'
    )


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return None


def _num(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:.3f}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return "∞" if math.isinf(value) and value > 0 else f"{value:g}"
    if value in ("inf", "Infinity"):
        return "∞"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
