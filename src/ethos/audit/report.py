"""The audit as one self-contained HTML page, in the order a reviewer reads it.

Summary (red/amber/green per dimension), informativeness (is the model better than a constant?),
fairness (group rates and disparities with confidence intervals, and the groups too small to read),
calibration (reliability diagrams), robustness, explanations (token heatmaps) and privacy. A model
that is not informative gets a red banner above everything else. Figures are inline SVG, styles
are inline, there is no script and no network request, so the file can be attached to a review or
archived as it is.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any

from ethos.audit import svg
from ethos.audit.informativeness import is_not_informative
from ethos.audit.sample_size import group_size_warnings

STATUS_COLOURS = {"green": "#2e7d32", "amber": "#e69b00", "red": "#c62828", "grey": "#777"}
RATES = ("selection_rate", "tpr", "fpr", "ppv")
CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}
.status{display:inline-block;color:#fff;border-radius:4px;padding:.1rem .5rem;font-weight:600}
.note{color:#555;font-size:.85rem}.figure{margin:.8rem 0}
.tok{padding:0 .1rem;border-radius:2px;line-height:1.8}
.alert{background:#c62828;color:#fff;padding:.6rem .8rem;border-radius:4px;font-weight:600}
"""


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_num(v) if not isinstance(v, str) else escape(v)}</td>" for v in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(content: str, caption: str) -> str:
    return (
        f'<figure class="figure chart">{content}'
        f'<figcaption class="note">{escape(caption)}</figcaption></figure>'
    )


def _summary(audit: dict[str, Any]) -> str:
    rows = []
    for dimension, entry in audit.get("summary", {}).items():
        status = entry["status"]
        badge = f'<span class="status" style="background:{STATUS_COLOURS[status]}">{status}</span>'
        rows.append(
            f"<tr><td>{escape(dimension)}</td><td>{badge}</td>"
            f"<td style='text-align:left'>{escape('; '.join(entry['reasons']))}</td>"
            f"<td class='note' style='text-align:left'>{escape(entry['screen'])}</td></tr>"
        )
    return (
        "<h2 id='summary'>Summary</h2><table><thead><tr><th>dimension</th><th>status</th>"
        "<th>finding</th><th>screen</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        "<p class='note'>These screens flag what to look at; the organisation's policy "
        "(<code>ethos gate</code>) decides.</p>"
    )


def _fairness(section: dict[str, Any]) -> str:
    out = ["<h2 id='fairness'>Fairness</h2>"]
    small: dict[str, list[str]] = {}
    for warning in group_size_warnings(section):
        small.setdefault(warning["attribute"], []).append(warning["message"])
    for attribute, entry in section.items():
        groups = entry.get("groups", {})
        names = list(groups)
        out.append(f"<h3>{escape(attribute)}</h3>")
        out.extend(
            f"<p class='note sample-size'>⚠ {escape(m)}</p>" for m in small.get(attribute, [])
        )
        series = {rate: [groups[g].get(rate) for g in names] for rate in RATES}
        if names and any(v is not None for values in series.values() for v in values):
            out.append(
                _figure(
                    svg.grouped_bars(f"rates by {attribute}", names, series),
                    f"Selection rate, true- and false-positive rate and precision by {attribute}.",
                )
            )
        out.append(
            _table(
                [
                    "group",
                    "count",
                    "base rate",
                    "selection",
                    "accuracy",
                    "TPR",
                    "FPR",
                    "FNR",
                    "PPV",
                    "used",
                ],
                [
                    [
                        g,
                        v.get("count"),
                        v.get("base_rate"),
                        v.get("selection_rate"),
                        v.get("accuracy"),
                        v.get("tpr"),
                        v.get("fpr"),
                        v.get("fnr"),
                        v.get("ppv"),
                        v.get("used_for_disparities"),
                    ]
                    for g, v in groups.items()
                ],
            )
        )
        disparities = entry.get("disparities", {})
        rows = [
            (name, d.get("value"), d.get("ci_low"), d.get("ci_high"))
            for name, d in disparities.items()
            if isinstance(d, dict) and name.endswith("difference")
        ]
        if any(value is not None for _, value, _, _ in rows):
            out.append(
                _figure(
                    svg.interval_bars(f"disparities for {attribute}", rows, limit=0.1),
                    "Differences between groups (axis: the difference in rate, 0 = equal) with "
                    "bootstrap 95% intervals; dashed: 0.10.",
                )
            )
        elif rows:
            out.append(
                "<p class='note'>No disparity computed: fewer than two groups reach the minimum "
                f"group size ({_num(entry.get('min_group_size'))}).</p>"
            )
        out.append(
            _table(
                ["disparity", "value", "95% CI low", "95% CI high"],
                [
                    [n, d.get("value"), d.get("ci_low"), d.get("ci_high")]
                    for n, d in disparities.items()
                    if isinstance(d, dict)
                ],
            )
        )
        rule = entry.get("four_fifths_rule")
        if rule:
            out.append(
                f"<p class='note'>Four-fifths rule: ratio {_num(rule.get('ratio'))}, passes: "
                f"{_num(rule.get('passes'))}. {escape(str(rule.get('caveat', '')))}</p>"
            )
    return "".join(out)


def _calibration(section: dict[str, Any]) -> str:
    out = ["<h2 id='calibration'>Calibration</h2>"]
    overall = section.get("overall", {})

    def points(summary: dict[str, Any]) -> list[tuple[float, float]]:
        return [
            (b["mean_confidence"], b["accuracy"])
            for b in summary.get("reliability", {}).get("uniform_15", [])
            if b.get("count")
        ]

    curves = {"overall": points(overall)}
    for attribute, groups in section.get("groups", {}).items():
        for group, summary in list(groups.items())[:5]:
            curves[f"{attribute}={group}"] = points(summary)
        break  # one attribute keeps the diagram readable; the table has them all
    out.append(
        _figure(
            svg.reliability("reliability diagram", curves),
            "Mean predicted probability against observed frequency (15 equal-width bins).",
        )
    )
    rows = [
        [
            "overall",
            overall.get("count"),
            overall.get("ece", {}).get("uniform_15"),
            overall.get("ece", {}).get("equal_mass_10"),
            overall.get("brier"),
        ]
    ]
    for attribute, groups in section.get("groups", {}).items():
        for group, s in groups.items():
            rows.append(
                [
                    f"{attribute}={group}",
                    s.get("count"),
                    s.get("ece", {}).get("uniform_15"),
                    s.get("ece", {}).get("equal_mass_10"),
                    s.get("brier"),
                ]
            )
    out.append(_table(["rows", "count", "ECE (15 bins)", "ECE (10 equal-mass)", "Brier"], rows))
    for warning in section.get("warnings", []):
        out.append(f"<p class='note'>⚠ {escape(str(warning))}</p>")
    return "".join(out)


def _robustness(section: dict[str, Any]) -> str:
    out = ["<h2 id='robustness'>Robustness</h2>"]
    families = _families(section)
    if families:
        out.append(
            _figure(
                svg.interval_bars(
                    "prediction flip rate by perturbation",
                    [(name, f.get("flip_rate"), None, None) for name, f in families.items()],
                    limit=0.05,
                ),
                "Share of predictions that change under each perturbation; dashed: 0.05.",
            )
        )
        if all(f.get("flip_rate") == 0 for f in families.values()):
            out.append(
                "<p class='note zero-flips'>All flip rates are 0: no perturbation changed any "
                "prediction. For a model that predicts one class for every row this is expected "
                "and says nothing about robustness (see Informativeness).</p>"
            )
        out.append(
            _table(
                ["perturbation", "n", "flip rate", "mean |Δp|", "max |Δp|"],
                [
                    [
                        n,
                        f.get("n"),
                        f.get("flip_rate"),
                        f.get("mean_abs_delta"),
                        f.get("max_abs_delta"),
                    ]
                    for n, f in families.items()
                ],
            )
        )
        for name, family in families.items():
            worst = family.get("worst") or []
            if worst:
                out.append(f"<details><summary>worst examples: {escape(name)}</summary>")
                out.append(
                    _table(
                        ["original", "perturbed", "p before", "p after"],
                        [
                            [
                                str(w.get("original", "")),
                                str(w.get("perturbed", "")),
                                w.get("p_before"),
                                w.get("p_after"),
                            ]
                            for w in worst[:5]
                        ],
                    )
                )
                out.append("</details>")
    out.extend(_notes(section))
    return "".join(out)


def _families(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every entry with a flip rate, wherever the check nested it, keyed by a readable path."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            if "flip_rate" in node and isinstance(node.get("flip_rate"), (int, float)):
                found[" / ".join(path) or "all"] = node
                return
            for key, value in node.items():
                walk(value, [*path, str(key)])

    walk({k: v for k, v in section.items() if not k.startswith("max_")}, [])
    return found


def _explanations(section: dict[str, Any]) -> str:
    out = ["<h2 id='explanations'>Explanations</h2>"]
    completeness = section.get("completeness", {})
    out.append(
        f"<p>Method: {escape(str(section.get('method', '')))}; completeness gap max "
        f"{_num(completeness.get('max_gap'))}, tolerance {_num(completeness.get('tolerance'))}, "
        f"within tolerance: {_num(completeness.get('within_tolerance'))}.</p>"
    )
    for example in (section.get("examples") or [])[:8]:
        tokens = example.get("tokens") or []
        attributions = example.get("attributions") or []
        scale = max([abs(a) for a in attributions if a is not None] + [1e-9])
        spans = []
        for token, value in zip(tokens, attributions, strict=False):
            value = float(value or 0.0)
            alpha = min(1.0, abs(value) / scale)
            colour = f"rgba(198,40,40,{alpha:.2f})" if value > 0 else f"rgba(40,90,198,{alpha:.2f})"
            spans.append(
                f'<span class="tok" style="background:{colour}" title="{value:.4f}">'
                f"{escape(str(token))}</span>"
            )
        out.append(
            f"<div class='figure heatmap'><div class='note'>group "
            f"{escape(str(example.get('group', '')))}, predicted "
            f"{escape(str(example.get('predicted', '')))}</div>{' '.join(spans)}</div>"
        )
    share = section.get("identity_share") or {}
    rows = [
        [f"{a}={g}", v]
        for a, groups in share.items()
        if isinstance(groups, dict)
        for g, v in groups.items()
    ]
    if rows:
        out.append("<h3>Share of attribution on identity terms</h3>")
        out.append(_table(["group", "share"], rows))
    top = section.get("top_tokens") or {}
    for label, tokens in top.items():
        out.append(f"<h3>Top tokens for class {escape(str(label))}</h3>")
        out.append(
            _table(
                ["token", "mean attribution", "count"],
                [
                    [str(t.get("token")), t.get("mean_attribution"), t.get("count")]
                    for t in tokens[:10]
                ],
            )
        )
    out.extend(_notes(section))
    return "".join(out)


def _privacy(section: dict[str, Any]) -> str:
    out = ["<h2 id='privacy'>Privacy</h2>"]
    pii = section.get("pii") or {}
    if pii:
        out.append(
            f"<p>PII scan: {_num(pii.get('scanned'))} texts scanned, "
            f"{_num(pii.get('texts_with_pii'))} with PII (rate {_num(pii.get('rate'))}).</p>"
        )
        by_entity = pii.get("by_entity") or {}
        if by_entity:
            out.append(_table(["entity", "count"], [[k, v] for k, v in by_entity.items()]))
    attack = section.get("membership_inference") or {}
    if attack:
        out.append(
            _table(
                ["membership inference", "value"],
                [[k, v] for k, v in attack.items() if not isinstance(v, (dict, list))],
            )
        )
    epsilon = section.get("epsilon")
    shown = _num(epsilon) if epsilon is not None else "not trained with differential privacy"
    out.append(f"<p>Differential privacy ε: {shown}</p>")
    out.extend(_notes(section))
    return "".join(out)


def _informativeness(section: dict[str, Any]) -> str:
    out = ["<h2 id='informativeness'>Informativeness</h2>"]
    verdict = "informative" if section.get("informative") else "not informative"
    colour = STATUS_COLOURS["green" if section.get("informative") else "red"]
    out.append(
        f'<p><span class="status" style="background:{colour}">{verdict}</span> '
        f"{escape('; '.join(section.get('reasons') or []))}</p>"
    )
    auroc = section.get("auroc") or {}
    tfidf = section.get("tfidf_logreg") or {}
    majority = section.get("majority") or {}
    rows = [
        ["accuracy", section.get("accuracy")],
        ["majority baseline (used)", section.get("majority_accuracy")],
        ["majority share of the audited rows", majority.get("audited_rows")],
        ["majority-class baseline in metrics.json", majority.get("recorded")],
        ["TF-IDF + logistic regression accuracy (reference)", tfidf.get("accuracy")],
        [f"AUROC (of the {auroc.get('scores', 'scores')})", auroc.get("value")],
        ["AUROC 95% CI low", auroc.get("ci_low")],
        ["AUROC 95% CI high", auroc.get("ci_high")],
        ["TF-IDF + logistic regression AUROC (reference)", tfidf.get("auroc")],
        ["one predicted class for every row", section.get("constant_prediction")],
    ]
    out.append(_table(["measure", "value"], rows))
    predicted = section.get("predicted_classes") or {}
    out.append(
        "<p class='note'>Predicted classes: "
        + escape(", ".join(f"{k}: {v}" for k, v in predicted.items()))
        + f". Rule: {escape(str(section.get('rule', '')))}.</p>"
    )
    if section.get("note"):
        out.append(f"<p class='note'>{escape(str(section['note']))}</p>")
    return "".join(out)


def _banner(audit: dict[str, Any]) -> str:
    """A red line above everything when the model is not informative."""
    if not is_not_informative(audit):
        return ""
    reasons = "; ".join(audit["informativeness"].get("reasons") or [])
    return (
        f"<p class='alert' id='not-informative'>Not informative: {escape(reasons)}. The fairness, "
        "calibration and robustness numbers below are not meaningful for this model.</p>"
    )


def _notes(section: dict[str, Any]) -> list[str]:
    return [f"<p class='note'>{escape(str(n))}</p>" for n in section.get("notes", []) or []]


SECTIONS = {
    "informativeness": _informativeness,
    "fairness": _fairness,
    "calibration": _calibration,
    "robustness": _robustness,
    "explanations": _explanations,
    "privacy": _privacy,
}


def render_report(audit: dict[str, Any]) -> str:
    """The whole report as one HTML string."""
    meta = audit.get("meta", {})
    title = f"ethos audit: {meta.get('run_id') or meta.get('source', '')}"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        "<p class='note'>"
        + escape(
            f"{meta.get('rows', '?')} rows; data {meta.get('data', meta.get('source', ''))}; "
            f"created {meta.get('created_utc', '')}"
        )
        + "</p>",
        _banner(audit),
        _summary(audit),
    ]
    for name, render in SECTIONS.items():
        section = audit.get(name)
        if isinstance(section, dict) and section:
            try:
                parts.append(render(section))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                parts.append(
                    f"<h2>{escape(name)}</h2><p class='note'>could not draw this section "
                    f"({escape(str(exc))}); raw values:</p><pre>"
                    f"{escape(json.dumps(section, indent=1)[:20000])}</pre>"
                )
    parts.append(
        "<h2 id='meta'>About this audit</h2><pre>"
        + escape(json.dumps(meta, indent=1))
        + "</pre></body></html>"
    )
    return "".join(parts)
