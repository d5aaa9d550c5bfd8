"""The sweep page: Pareto fronts and every point, as one self-contained HTML file.

Drawn from sweep.json alone (so it can be redrawn from the file). Two scatter plots, accuracy
against the fairness gap and accuracy against ε, each with its Pareto front as a step line and
every point labelled with its grid values and W; a bar per point for W against the policy's
threshold; and a table of all points with their decisions and links to their audit reports.
A point whose model is not informative (``"informative": false``: no better than a constant or
chance) is drawn hollow, labelled "not informative", listed as such, and never ringed or joined
into a front, whatever sweep.json's ``fronts`` say.
Inline SVG and styles, no script, no network request, like the audit report; escaping, tables,
numbers, figures and the page shell are :mod:`ethos.html`'s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ethos.html import (
    DECISION_STATUS,
    INFINITY,
    MISSING,
    STATUS_COLOURS,
    Html,
    badge,
    clip,
    escape,
    figure,
    fixed,
    page,
    real,
    show,
    significant,
    svg,
    table,
    tag,
)
from ethos.sweep.pareto import staircase

DECISION_COLOURS = {decision: STATUS_COLOURS[s] for decision, s in DECISION_STATUS.items()}
OTHER_COLOUR = STATUS_COLOURS["grey"]
FRONT_COLOUR = "#3b6ea8"
NOT_INFORMATIVE = "not informative"
CSS = "body{max-width:1100px}.error{color:#c62828;max-width:28rem}"
"""The page's own styles, after :data:`ethos.html.CSS`: wider, for the table of all points."""
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
        f"<p class='note'>grid: {escape(grid)}<br>config {escape(document.get('config'))}"
        f"; started {escape(document.get('created_utc'))}, updated "
        f"{escape(document.get('updated_utc'))}; {len(done)} of {len(points)} points "
        "finished. Every point is a governed run with its own ledger entries.</p>",
        "<h2>Accuracy against the fairness gap</h2>",
        figure(
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
        figure(
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
        figure(_welfare_chart(labelled, document.get("threshold")), _welfare_caption(document)),
        "<h2>All points</h2>",
        _table(points, document.get("grid", [])),
    ]
    return page(title, parts, css=CSS)


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
) -> Html:
    marks = []
    for p in done:
        x = real(p.get(x_field))
        if x_field == "epsilon" and x is None and not p.get("private"):
            x = math.inf
        y = real(p.get("accuracy"))
        if x is None or y is None:
            continue
        w = fixed(p.get("welfare"), 2)
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
) -> Html:
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
            f'text-anchor="{"end" if right_half else "start"}">{escape(clip(m.label, 60))}</text>'
        )
    parts.append(_legend(LEFT + plot_w, TOP - 10))
    if note:
        parts.append(
            f'<text x="{LEFT}" y="{TOP - 10}" font-size="10" fill="#777">{escape(note)}</text>'
        )
    return svg(title, WIDTH, HEIGHT, parts)


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


def _welfare_chart(points: list[dict[str, Any]], threshold: Any) -> Html:
    from ethos.audit import svg as charts  # the audit report's bars, the threshold as the limit

    rows = [
        (clip(f"#{p['index'] + 1} {p['label']}", 34), real(p.get("welfare")), None, None)
        for p in points
    ]
    return charts.interval_bars(
        "policy score W per point", rows, width=WIDTH, limit=real(threshold)
    )


def _welfare_caption(document: dict[str, Any]) -> str:
    return (
        f"W = Σ wᵢFᵢ under policy {document.get('policy')}; the dashed line is its PASS threshold "
        f"({significant(document.get('threshold'), 6)}). A broken constraint fails a run whatever "
        "its W; runs without a bar did not finish."
    )


def _table(points: list[dict[str, Any]], grid: list[dict[str, Any]]) -> Html:
    header = ["#", *(a["name"] for a in grid), "status", "accuracy", "accuracy by group"]
    header += ["fairness gap", "ε", "W", "decision", "informative", "fronts", "run", "error"]
    rows = [_row(p, [a["key"] for a in grid]) for p in points]
    text = [None] * (len(header) - 2) + ["text", "text"]  # run link and error read as text
    return table(header, rows, columns=text, class_="points")


def _row(p: dict[str, Any], keys: list[str]) -> list[object]:
    """One point's cells: numbers are formatted by the table, markup is built here."""
    values = p.get("values", {})
    decision = p.get("decision")
    done = p.get("status") == "done"
    run = p.get("run_dir")
    return [
        p["index"] + 1,
        *(_value(values.get(k)) for k in keys),
        p.get("status"),
        real(p.get("accuracy")),
        " · ".join(
            f"{g} {fixed(v)}"
            for g, v in (p.get("group_accuracy") or {}).items()
            if real(v) is not None
        )
        or MISSING,
        real(p.get("fairness_gap")),
        _epsilon(p) if done else MISSING,
        real(p.get("welfare")),
        badge(decision, DECISION_STATUS[decision]) if decision in DECISION_STATUS else decision,
        _verdict(p.get("informative")),
        _fronts(p),
        tag("a", show(p.get("run_id")), href=f"{run}/audit/report.html") if run and done else run,
        tag("span", p.get("error") or "", class_="error"),
    ]


def _epsilon(point: dict[str, Any]) -> str:
    return _value(point.get("epsilon")) if point.get("private") else f"{INFINITY} (non-private)"


def _verdict(informative: bool | None) -> object:
    if informative is None:
        return MISSING
    return "yes" if informative else tag("b", f"no: {NOT_INFORMATIVE}")


def _fronts(point: dict[str, Any]) -> str:
    """The fronts a point is on; never any when its model is not informative."""
    if point.get("informative") is False:
        return f"none ({NOT_INFORMATIVE})"
    names = {"accuracy_vs_fairness_gap": "fairness", "accuracy_vs_epsilon": "ε"}
    return (
        ", ".join(label for name, label in names.items() if name in point.get("fronts", []))
        or "none"
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
        f"{escape(clip(x_label, 110))}</text>"
        f'<text x="14" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="11" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    return "".join(parts)


def _value(value: Any) -> str:
    """A grid value as written (``:g`` for a float, ∞ for infinity), a list or dict as JSON."""
    if isinstance(value, float):
        return significant(value, 6)
    if value in ("inf", "Infinity"):
        return INFINITY
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)
