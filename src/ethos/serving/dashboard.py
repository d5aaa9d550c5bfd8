"""The monitoring page of `ethos serve` (GET /dashboard): one server-rendered HTML document.

Drift, positive rates and feedback over time as inline-SVG line charts with their policy limits
drawn in, the probability histogram against the test set's, the alerts (active first, then past
ones), and the served model's gate decision. Like the audit report it has inline styles, no script
and no network request; a meta refresh reloads it every 10 seconds. Axes and legends are the audit
report's (``ethos.audit.svg``), escaping, tables, numbers and the page shell :mod:`ethos.html`'s;
every string that can come from a client (group names) or from the run is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ethos.audit import svg as charts
from ethos.governance.monitoring import MonitorThresholds
from ethos.html import (
    DECISION_STATUS,
    MISSING,
    Html,
    badge,
    escape,
    figure,
    page,
    real,
    significant,
    svg,
    table,
    tag,
)
from ethos.serving.monitor import Alert, MonitorSnapshot, rule_statuses

REFRESH_SECONDS = 10
MAX_GROUP_SERIES = len(charts.PALETTE)
"""Groups drawn in the per-group chart (the most frequent ones); the table lists them all."""
CSS = """
.alert{border-left:6px solid #c62828;background:#fdecea;padding:.4rem .8rem;margin:.4rem 0}
.ok{border-left:6px solid #2e7d32;background:#edf7ee;padding:.4rem .8rem;margin:.4rem 0}
.waiting{border-left:6px solid #9e9e9e;background:#f3f3f3;padding:.4rem .8rem;margin:.4rem 0}
.charts{display:flex;flex-wrap:wrap;gap:0 1.5rem}.charts figure{flex:0 0 480px;margin:.8rem 0}
.text-table td,.text-table th{text-align:left}
"""
"""The dashboard's own styles, after :data:`ethos.html.CSS`: alert boxes and the chart grid."""
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 480, 230, 44, 80, 22, 52


def render_dashboard(
    *,
    model: Mapping[str, Any],
    snapshot: MonitorSnapshot,
    history: Sequence[MonitorSnapshot],
    alerts: Sequence[Alert],
    generated_at: datetime | float,
    thresholds: MonitorThresholds | None = None,
) -> str:
    """The page as one HTML string.

    ``model`` is the served model's summary (``model_id``, ``decision``, ``welfare``,
    ``threshold``, ``policy``, ``decision_id``; missing keys show as n/a; ``approved_by``,
    ``review_override_entry`` and ``card``, the card summary of `/v1/model`, add rows when
    present), ``snapshot`` the current statistics, ``history`` the snapshots over time (oldest
    first), ``alerts`` the recent alerts, active and cleared, and ``thresholds`` the limits
    drawn on the charts (the policy's; defaults when not given).
    """
    limits = thresholds or MonitorThresholds()
    model_id = str(model.get("model_id") or "unknown model")
    title = f"ethos monitoring: {model_id}"
    stamp = _when(generated_at)
    points = list(history) or ([snapshot] if snapshot.n else [])
    parts = [
        tag(
            "p",
            f"generated {stamp} (UTC), refreshed every {REFRESH_SECONDS} s; window "
            f"{snapshot.n} of {limits.window} predictions ({snapshot.observed_total} served "
            f"since start), {snapshot.feedback_n} fed-back labels; compared with the run's "
            "test set.",
            class_="note",
        ),
        _model(model),
        _alerts(alerts, snapshot, limits),
        _now(snapshot, limits),
        "<h2 id='drift'>Drift over time</h2>",
        _charts(points, limits, snapshot),
        "<h2 id='definitions'>How these are measured</h2>",
        tag(
            "p",
            "PSI: population stability index (Siddiqi 2006; above 0.2 is a significant shift), "
            "on ten bins of equal test-set share (the test set's deciles). KS: "
            "two-sample Kolmogorov-Smirnov p-value of the probabilities. Embedding shift: "
            "distance of the window's mean embedding from the test set's, in test-set spreads "
            "(sampling alone gives about 1/√window). OOV: share of words that are not whole "
            "entries of the tokenizer's vocabulary. Group gap: largest minus smallest positive "
            "rate between groups with enough predictions in the window. Feedback fairness: "
            f"{limits.feedback_fairness_metric.replace('_', ' ')} difference on fed-back labels.",
            class_="note",
        ),
    ]
    return page(title, parts, css=CSS, refresh_seconds=REFRESH_SECONDS)


def render_not_monitored(
    *, model: Mapping[str, Any], reason: str, generated_at: datetime | float
) -> str:
    """The page for a served model that is not monitored (a causal LM): the model and why."""
    model_id = str(model.get("model_id") or "unknown model")
    parts = [
        tag("p", f"generated {_when(generated_at)} (UTC)", class_="note"),
        _model(model),
        "<h2 id='drift'>Drift</h2>",
        tag("div", reason, class_="waiting"),
    ]
    return page(f"ethos monitoring: {model_id}", parts, css=CSS)


def _model(model: Mapping[str, Any]) -> str:
    decision = str(model.get("decision") or MISSING)
    rows: list[list[object]] = [
        ["model", model.get("model_id") or MISSING],
        ["gate decision", badge(decision, DECISION_STATUS.get(decision, "grey"))],
        ["policy", model.get("policy") or MISSING],
        ["policy score W", welfare_text(model.get("welfare"), model.get("threshold"))],
        ["ledger entry", model.get("decision_id") or MISSING],
    ]
    if model.get("approved_by"):
        rows.append(["REVIEW approved by", model["approved_by"]])
    if model.get("review_override_entry"):
        rows.append(
            ["served unreviewed", f"--allow-review, ledger entry {model['review_override_entry']}"]
        )
    if "card" in model:
        rows.append(["model card", card_text(model.get("card"))])
    body = table([], rows, class_="model", row_headers=True)
    return f"<h2 id='model'>Model</h2><div class='text-table'>{body}</div>"


def welfare_text(welfare: Any, threshold: Any) -> str:
    """W beside the policy's threshold, and whether it meets it; the decision is its own row.

    The gate (ethos.governance.scorecard) decides PASS only when every constraint holds *and*
    W is at or above the threshold; a W below it makes the decision REVIEW at best, so the
    threshold is shown as what W is compared with, never as "PASS at".
    """
    shown = f"{significant(welfare)} (policy threshold {significant(threshold)}"
    w, limit = real(welfare), real(threshold)
    if w is None or limit is None or not (math.isfinite(w) and math.isfinite(limit)):
        return shown + ")"
    if w >= limit:
        return shown + ": met)"
    return shown + ": not met, so the gate cannot decide PASS)"


def card_text(card: Any) -> str:
    """The model card row: where it is, and whether it describes the decision being served."""
    if not isinstance(card, Mapping) or not card.get("available"):
        return "none in the run directory (write one with `ethos card RUN_DIR`)"
    where = str(card.get("html") or card.get("markdown"))
    updated = card.get("updated_utc")
    text = f"{where}, written {updated}" if updated else where
    if card.get("stale") == "server":
        return (
            f"{text}; describes a later gate decision than the one being served (the run was "
            "gated again: restart `ethos serve` to serve under it)"
        )
    if card.get("stale") == "card":
        return f"{text}; describes an earlier gate decision (run `ethos card` again)"
    if card.get("matches_served_decision") is True:
        return f"{text}; describes the decision being served"
    return f"{text}; does not say which gate decision it describes"


def _alerts(alerts: Sequence[Alert], snapshot: MonitorSnapshot, limits: MonitorThresholds) -> str:
    """Active alerts first; an empty list is 'no active alert' only once drift can be judged.

    Below ``min_window`` predictions no drift alert is raised, so a statistic beyond its limit
    there is noise, not an all-clear: the page says the window is too small to judge instead.
    """
    active = [a for a in alerts if a.cleared_at is None]
    out = ["<h2 id='alerts'>Alerts</h2>"]
    out.extend(
        tag(
            "div",
            tag("strong", a.metric),
            f": {a.message} ",
            tag("span", f"since {a.created_utc}", class_="note"),
            class_="alert active-alert",
        )
        for a in active
    )
    if snapshot.n < limits.min_window:
        out.append(
            tag(
                "div",
                f"Window too small to judge drift ({snapshot.n} of {limits.min_window} "
                f"predictions needed; the window holds up to {limits.window}): no drift alert "
                "is raised until then, and the values below are mostly sampling noise.",
                class_="waiting too-few",
            )
        )
    elif not active:
        out.append("<div class='ok'>No active alert.</div>")
    if alerts:
        rows = [
            [
                a.metric,
                a.value,
                a.threshold,
                a.message,
                a.created_utc,
                "active" if a.cleared_at is None else _when(a.cleared_at),
            ]
            for a in reversed(alerts)
        ]
        header = ["metric", "value", "limit", "message", "raised", "cleared"]
        out.append(f"<div class='text-table'>{table(header, rows, number=significant)}</div>")
    return "".join(out)


def _now(snapshot: MonitorSnapshot, limits: MonitorThresholds) -> str:
    rows = []
    for status in rule_statuses(snapshot, limits):
        side = "at most" if status.above else "at least"
        rows.append(
            [
                status.metric,
                status.what,
                status.value,
                f"{side} {significant(status.limit)}",
                status.description,
            ]
        )
    statuses = table(["metric", "what", "now", "limit", "state"], rows, number=significant)
    groups = [
        [group, snapshot.group_counts.get(group, 0), rate]
        for group, rate in snapshot.group_positive_rates.items()
    ]
    group_table = (
        table(["group", "in window", "positive rate"], groups, number=significant)
        if groups
        else "<p class='note'>No group has enough predictions in the window "
        f"({limits.group_min} needed), or none was given.</p>"
    )
    return (
        f"<h2 id='now'>Now</h2><div class='text-table'>{statuses}</div>"
        f"<h3>Positive rate by group</h3>{group_table}"
    )


def _charts(
    points: Sequence[MonitorSnapshot], limits: MonitorThresholds, snapshot: MonitorSnapshot
) -> str:
    times = [p.created_at for p in points]

    def series(name: str) -> list[float | None]:
        return [getattr(p, name) for p in points]

    reference_oov = (
        None
        if snapshot.oov_rate is None or snapshot.oov_rate_delta is None
        else snapshot.oov_rate - snapshot.oov_rate_delta
    )
    reference_rate = snapshot.reference_positive_rate
    rate_limits = (
        []
        if reference_rate is None
        else [
            ("test set", reference_rate),
            ("limit", min(1.0, reference_rate + limits.positive_rate_delta_max)),
            ("limit", max(0.0, reference_rate - limits.positive_rate_delta_max)),
        ]
    )
    groups = sorted(
        {g for p in points for g in p.group_positive_rates},
        key=lambda g: -snapshot.group_counts.get(g, 0),
    )[:MAX_GROUP_SERIES]
    group_series = {g: [p.group_positive_rates.get(g) for p in points] for g in groups}
    figures = [
        figure(
            lines(
                "PSI over time",
                times,
                {"probabilities": series("probability_psi"), "lengths": series("length_psi")},
                [("prob. limit", limits.psi_max), ("length limit", limits.length_psi_max)],
                cap=5 * max(limits.psi_max, limits.length_psi_max),
            ),
            "Population stability index of the positive-class probabilities and of the input "
            f"lengths against the test set. Until the window holds {limits.min_window} "
            "predictions the values are mostly sampling noise, and no alert is raised.",
        ),
        figure(
            lines(
                "KS p-value over time",
                times,
                {"probabilities": series("probability_ks_pvalue")},
                [("limit", limits.ks_pvalue_min)],
                maximum=1.0,
            ),
            "Two-sample Kolmogorov-Smirnov p-value of the probabilities; below the line the "
            "window is unlikely to come from the test set's distribution.",
        ),
        figure(
            lines(
                "positive rate over time",
                times,
                {"positive rate": series("positive_rate")},
                rate_limits,
                maximum=1.0,
            ),
            "Share of positive decisions in the window, the test set's, and the allowed band.",
        ),
        figure(
            lines(
                "embedding shift over time",
                times,
                {"embedding shift": series("embedding_shift")},
                [("limit", limits.embedding_shift_max)],
                cap=4 * limits.embedding_shift_max,
            ),
            "Distance of the window's mean embedding from the test set's, in test-set spreads.",
        ),
        figure(
            lines(
                "out-of-vocabulary rate over time",
                times,
                {"OOV rate": series("oov_rate")},
                []
                if reference_oov is None
                else [
                    ("test set", reference_oov),
                    ("limit", reference_oov + limits.oov_rate_delta_max),
                ],
                maximum=1.0,
            ),
            "Mean share of words without a whole vocabulary entry.",
        ),
        figure(
            lines(
                "positive rate by group over time",
                times,
                {**group_series, "gap": series("group_positive_rate_gap")},
                [("gap limit", limits.group_positive_rate_gap_max)],
                maximum=1.0,
            ),
            f"Groups with at least {limits.group_min} predictions in the window (the "
            f"{MAX_GROUP_SERIES} most frequent drawn) and the gap between the highest and "
            "lowest rate.",
        ),
        figure(
            lines(
                "feedback over time",
                times,
                {
                    "accuracy": series("feedback_accuracy"),
                    "fairness gap": series("feedback_fairness_gap"),
                },
                [
                    ("acc. limit", limits.feedback_accuracy_min),
                    ("gap limit", limits.feedback_fairness_gap_max),
                ],
                maximum=1.0,
            ),
            f"Accuracy and {limits.feedback_fairness_metric.replace('_', ' ')} difference on "
            f"the last fed-back labels (from {limits.feedback_min} labels on).",
        ),
    ]
    bins = len(snapshot.reference_probability_histogram)
    if bins:
        names = [f"{i / bins:.1f}-{(i + 1) / bins:.1f}" for i in range(bins)]
        reference = list(snapshot.reference_probability_histogram)
        current: list[float | None] = [*snapshot.probability_histogram] or [None] * bins
        highest = max([*reference, *snapshot.probability_histogram])
        figures.append(
            figure(
                charts.grouped_bars(
                    "probability histogram",
                    names,
                    {"test set": list(reference), "window": current},
                    width=WIDTH,
                    maximum=min(1.0, max(0.1, highest * 1.1)),
                ),
                "Share of predictions per probability bin, now and in the test set.",
            )
        )
    return f"<div class='charts'>{''.join(figures)}</div>"


def lines(
    title: str,
    times: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    limits: Sequence[tuple[str, float]] = (),
    *,
    maximum: float | None = None,
    cap: float | None = None,
) -> Html:
    """A line chart over time (epoch seconds) with horizontal dashed limit lines.

    The y axis runs from 0 to ``maximum`` (default: the largest value or limit, plus a tenth,
    but at most ``cap``, so one huge value does not flatten the limit line onto the axis; values
    above are drawn at the top edge and the chart says so). Missing values (None, NaN) break a
    line; a lone point is drawn as a dot. Limits with the same value share one line. Axes and
    legend are the audit report's (``ethos.audit.svg``).
    """
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    finite = [v for values in series.values() for v in map(real, values) if v is not None]
    finite = [v for v in finite if math.isfinite(v)]
    top = maximum or max([*finite, *(v for _, v in limits), 1e-6]) * 1.1
    clipped = cap is not None and maximum is None and top > cap
    if clipped and cap is not None:
        top = cap
    merged: dict[float, list[str]] = {}
    for label, value in limits:
        merged.setdefault(value, []).append(label)
    shared = [
        ("limit" if len(labels) > 1 else labels[0], value) for value, labels in merged.items()
    ]
    start, end = (min(times), max(times)) if times else (0.0, 0.0)

    def to_x(t: float) -> float:
        return LEFT + (plot_w * (t - start) / (end - start) if end > start else plot_w / 2)

    def to_y(value: float) -> float:
        return TOP + plot_h * (1 - min(max(value, 0.0), top) / top)

    parts = [charts.axes(LEFT, TOP, plot_w, plot_h, top)]
    for t in sorted({start, (start + end) / 2, end}) if times else []:
        parts.append(
            f'<text x="{to_x(t):.1f}" y="{TOP + plot_h + 13}" text-anchor="middle" '
            f'font-size="9">{escape(_clock(t))}</text>'
        )
    for label, value in shared:
        y = to_y(value)
        parts.append(
            f'<line class="limit" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
            f'stroke="{charts.PALETTE[3]}" stroke-dasharray="5 3"><title>{escape(label)} '
            f"{value:.4g}</title></line>"
            f'<text x="{LEFT + plot_w + 3}" y="{y + 3:.1f}" font-size="9" '
            f'fill="{charts.PALETTE[3]}">{escape(label)}</text>'
        )
    if clipped:
        parts.append(
            f'<text x="{LEFT + 4}" y="{TOP - 6}" font-size="9" fill="#777">values above '
            f"{top:.3g} are drawn at the top edge</text>"
        )
    if not finite:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
            'font-size="12" fill="#777">no data yet</text>'
        )
    for i, (name, values) in enumerate(series.items()):
        colour = charts.PALETTE[i % len(charts.PALETTE)]
        for run in _runs(times, values):
            if len(run) == 1:
                t, v = run[0]
                parts.append(
                    f'<circle cx="{to_x(t):.1f}" cy="{to_y(v):.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(name)}: {v:.4g}</title></circle>"
                )
                continue
            path = " ".join(
                f"{'M' if j == 0 else 'L'}{to_x(t):.1f},{to_y(v):.1f}"
                for j, (t, v) in enumerate(run)
            )
            parts.append(
                f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2">'
                f"<title>{escape(name)}: last {run[-1][1]:.4g}</title></path>"
            )
    parts.append(charts.legend(list(series), LEFT, HEIGHT - 8))
    return svg(title, WIDTH, HEIGHT, parts)


def _runs(
    times: Sequence[float], values: Sequence[float | None]
) -> list[list[tuple[float, float]]]:
    """Consecutive finite points, so a missing value breaks the line instead of bridging it."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in zip(times, values, strict=True):
        if v is not None and math.isfinite(v):
            runs[-1].append((t, float(v)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _when(value: datetime | float) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S")
