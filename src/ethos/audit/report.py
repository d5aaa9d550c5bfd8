"""The audit as one self-contained HTML page, in the order a reviewer reads it.

Summary (red/amber/green per dimension), informativeness (is the model better than a constant?),
fairness (group rates and disparities with confidence intervals, and the groups too small to read),
calibration (reliability diagrams), robustness, explanations (token heatmaps), privacy and the
worst slices found by slice discovery. A model that is not informative gets a red banner above
everything else. Figures are inline SVG, styles are inline, there is no script and no network
request, so the file can be attached to a review or archived as it is. Escaping, tables, numbers,
figures and the page shell are :mod:`ethos.html`'s.
"""

from __future__ import annotations

import json
from typing import Any

from ethos.audit import svg
from ethos.audit.informativeness import is_not_informative
from ethos.audit.sample_size import group_size_warnings
from ethos.html import (
    Cell,
    badge,
    display,
    escape,
    figure,
    page,
    show,
    significant,
    table,
    tag,
)

RATES = ("selection_rate", "tpr", "fpr", "ppv")
CSS = """
.tok{padding:0 .1rem;border-radius:2px;line-height:1.8}
.alert{background:#c62828;color:#fff;padding:.6rem .8rem;border-radius:4px;font-weight:600}
"""
"""The report's own styles, after :data:`ethos.html.CSS`: token heatmaps and the red banner."""


def _summary(audit: dict[str, Any]) -> str:
    rows = [
        [
            dimension,
            badge(entry["status"], entry["status"]),
            "; ".join(entry["reasons"]),
            Cell(entry["screen"], "note text"),
        ]
        for dimension, entry in audit.get("summary", {}).items()
    ]
    header = ["dimension", "status", "finding", "screen"]
    return (
        "<h2 id='summary'>Summary</h2>"
        + table(header, rows, columns=[None, None, "text", "text"])
        + "<p class='note'>These screens flag what to look at; the organisation's policy "
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
        out.extend(tag("p", f"⚠ {m}", class_="note sample-size") for m in small.get(attribute, []))
        series = {rate: [groups[g].get(rate) for g in names] for rate in RATES}
        if names and any(v is not None for values in series.values() for v in values):
            out.append(
                figure(
                    svg.grouped_bars(f"rates by {attribute}", names, series),
                    f"Selection rate, true- and false-positive rate and precision by {attribute}.",
                )
            )
        out.append(
            table(
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
                figure(
                    svg.interval_bars(f"disparities for {attribute}", rows, limit=0.1),
                    "Differences between groups (axis: the difference in rate, 0 = equal) with "
                    "bootstrap 95% intervals; dashed: 0.10.",
                )
            )
        elif rows:
            out.append(
                "<p class='note'>No disparity computed: fewer than two groups reach the minimum "
                f"group size ({show(entry.get('min_group_size'))}).</p>"
            )
        out.append(
            table(
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
                f"<p class='note'>Four-fifths rule: ratio {show(rule.get('ratio'))}, passes: "
                f"{show(rule.get('passes'))}. {escape(rule.get('caveat', ''))}</p>"
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
        figure(
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
    out.append(table(["rows", "count", "ECE (15 bins)", "ECE (10 equal-mass)", "Brier"], rows))
    for warning in section.get("warnings", []):
        out.append(tag("p", f"⚠ {warning}", class_="note"))
    return "".join(out)


def _robustness(section: dict[str, Any]) -> str:
    out = ["<h2 id='robustness'>Robustness</h2>"]
    families = _families(section)
    if families:
        out.append(
            figure(
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
            table(
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
                    table(
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
        f"<p>Method: {escape(section.get('method', ''))}; completeness gap max "
        f"{show(completeness.get('max_gap'))}, tolerance {show(completeness.get('tolerance'))}, "
        f"within tolerance: {show(completeness.get('within_tolerance'))}.</p>"
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
                f"{escape(token)}</span>"
            )
        out.append(
            f"<div class='figure heatmap'><div class='note'>group "
            f"{escape(example.get('group', ''))}, predicted "
            f"{escape(example.get('predicted', ''))}</div>{' '.join(spans)}</div>"
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
        out.append(table(["group", "share"], rows))
    top = section.get("top_tokens") or {}
    for label, tokens in top.items():
        out.append(f"<h3>Top tokens for class {escape(label)}</h3>")
        out.append(
            table(
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
            f"<p>PII scan: {show(pii.get('scanned'))} texts scanned, "
            f"{show(pii.get('texts_with_pii'))} with PII (rate {show(pii.get('rate'))}).</p>"
        )
        by_entity = pii.get("by_entity") or {}
        if by_entity:
            out.append(table(["entity", "count"], [[k, v] for k, v in by_entity.items()]))
    attack = section.get("membership_inference") or {}
    if attack:
        out.append(
            table(
                ["membership inference", "value"],
                [[k, v] for k, v in attack.items() if not isinstance(v, (dict, list))],
            )
        )
    epsilon = section.get("epsilon")
    shown = show(epsilon) if epsilon is not None else "not trained with differential privacy"
    out.append(f"<p>Differential privacy ε: {shown}</p>")
    out.extend(_notes(section))
    out.append(_dp_audit(section.get("dp_audit")))
    return "".join(out)


DP_AUDIT_ROWS = (
    ("epsilon_lower_bound", "ε lower bound (audited)"),
    ("confidence", "confidence"),
    ("claim", "ε claimed (upper bound)"),
    ("delta", "δ used"),
    ("canaries", "canaries (m)"),
    ("included", "trained on"),
    ("guesses", "guesses (r)"),
    ("correct", "correct (v)"),
    ("k_positive", "guessed trained on (k+)"),
    ("k_negative", "guessed not trained on (k-)"),
    ("score", "membership score"),
)


def _dp_audit(section: Any) -> str:
    """The canary audit (``privacy.dp_audit``): the lower bound beside the claimed epsilon."""
    if not isinstance(section, dict) or not section:
        return ""
    out = ["<h3 id='dp-audit'>Empirical privacy audit (canaries)</h3>"]
    if not section.get("applicable"):
        out.append(f"<p>Not applicable: {escape(str(section.get('reason', '')))}</p>")
        return "".join(out)
    out.append(
        table(["one-run audit", "value"], [[label, section.get(k)] for k, label in DP_AUDIT_ROWS])
    )
    out.extend(_notes(section))
    return "".join(out)


def _informativeness(section: dict[str, Any]) -> str:
    out = ["<h2 id='informativeness'>Informativeness</h2>"]
    verdict = "informative" if section.get("informative") else "not informative"
    status = badge(verdict, "green" if section.get("informative") else "red")
    out.append(tag("p", status, " ", "; ".join(section.get("reasons") or [])))
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
    out.append(table(["measure", "value"], rows))
    predicted = section.get("predicted_classes") or {}
    out.append(
        "<p class='note'>Predicted classes: "
        + escape(", ".join(f"{k}: {v}" for k, v in predicted.items()))
        + f". Rule: {escape(section.get('rule', ''))}.</p>"
    )
    if section.get("note"):
        out.append(tag("p", section["note"], class_="note"))
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


def _slices(section: dict[str, Any]) -> str:
    """The worst significant slices as a table, with what was searched and how it was tested."""
    out = ["<h2 id='slices'>Slices</h2>"]
    skipped = section.get("skipped_attributes") or {}
    out.append(
        tag(
            "p",
            f"Searched {show(section.get('n_slices_tested'))} slices (attribute values and pairs "
            f"of them, at least {show(section.get('min_slice_size'))} rows) of "
            f"{', '.join(section.get('attributes') or []) or 'no attributes'}; each tested against "
            f"the other rows ({section.get('test', '')}), p-values adjusted by "
            f"{section.get('adjustment', '')} at FDR {show(section.get('fdr'))}.",
            class_="note",
        )
    )
    rows = [
        [
            Cell(s.get("description"), "text"),
            s.get("metric"),
            s.get("n"),
            s.get("rate"),
            s.get("rest_rate"),
            s.get("gap"),
            Cell(show(s.get("p_value"), significant), "num"),
            Cell(show(s.get("p_adjusted"), significant), "num"),
        ]
        for s in section.get("top_slices") or []
    ]
    if rows:
        header = ["slice", "metric", "rows", "rate", "rest", "gap", "p", "adjusted p"]
        out.append(table(header, rows, columns=["text", "text"]))
    else:
        out.append(tag("p", "No slice is significantly worse than the rest.", class_="note"))
    out.append(
        tag("p", f"Largest significant error-rate gap: {show(section.get('max_error_gap'))}.")
    )
    out.extend(
        tag("p", f"Not sliced on {name}: {why}.", class_="note") for name, why in skipped.items()
    )
    out.extend(_notes(section))
    return "".join(out)


def _notes(section: dict[str, Any]) -> list[str]:
    return [tag("p", n, class_="note") for n in section.get("notes", []) or []]


def _stereotype_likelihood(section: dict[str, Any]) -> str:
    """``ethos audit-lm``: the CrowS-Pairs share overall and per bias type, with intervals."""

    def row(name: str, entry: dict[str, Any]) -> list[Any]:
        low, high = entry.get("ci") or (None, None)
        directions = entry.get("directions") or {}
        return [
            name,
            entry.get("n"),
            entry.get("share"),
            low,
            high,
            entry.get("ties"),
            (directions.get("stereo") or {}).get("share"),
            (directions.get("antistereo") or {}).get("share"),
        ]

    rows = [row("all pairs", section.get("overall") or {})]
    rows += [row(name, entry) for name, entry in (section.get("by_bias_type") or {}).items()]
    header = ["bias type", "pairs", "share", "95% low", "95% high", "ties", "stereo", "antistereo"]
    return (
        "<h2 id='stereotype_likelihood'>Stereotype likelihood (CrowS-Pairs)</h2>"
        + tag(
            "p",
            f"Share of pairs where the {section.get('kind', '')} LM scores the more stereotyping "
            f"sentence higher ({section.get('score', 'score')}); 0.5 is no measured preference. "
            f"Intervals: {section.get('interval', '')}.",
            class_="note",
        )
        + table(header, rows)
    )


def _qa_bias(section: dict[str, Any]) -> str:
    from ethos.audit.qa_bias import render_section

    return render_section(section)


def _grounding(section: dict[str, Any]) -> str:
    from ethos.audit.grounding import render_section

    return render_section(section)


def _generation(name: str, section: dict[str, Any]) -> str:
    from ethos.audit import generation_report

    return str(getattr(generation_report, name)(section))


SECTIONS = {
    "informativeness": _informativeness,
    "fairness": _fairness,
    "calibration": _calibration,
    "robustness": _robustness,
    "explanations": _explanations,
    "privacy": _privacy,
    "slices": _slices,
    "stereotype_likelihood": _stereotype_likelihood,
    "qa_bias": _qa_bias,
    "grounding": _grounding,
    "generation_bias": lambda section: _generation("render_generation_bias", section),
    "pii_leakage": lambda section: _generation("render_pii_leakage", section),
    "memorisation": lambda section: _generation("render_memorisation", section),
}


def _changes(diff: dict[str, Any]) -> str:
    """``diff.json``: the run's paired changes against its parent, and the two decisions."""
    parent, rows = diff.get("parent") or {}, diff.get("rows") or {}
    boot = diff.get("bootstrap") or {}
    out = [
        "<h2 id='changes'>Changes against the parent run</h2>",
        tag(
            "p",
            f"Compared with {parent.get('run_id', '?')} on its {show(rows.get('shared_test_rows'))}"
            f" test rows ({show(rows.get('predictions_changed'))} decided differently); 95% "
            f"paired-bootstrap intervals ({show(boot.get('n_resamples'))} resamples, the same "
            "resampled rows for both runs).",
            class_="note",
        ),
    ]
    entries = list((diff.get("metrics") or {}).items())
    for attribute, section in (diff.get("fairness") or {}).items():
        if section.get("equalized_odds_difference"):
            entries.append(
                (f"equalized odds difference ({attribute})", section["equalized_odds_difference"])
            )
    body = []
    for name, d in entries:
        low, high = (d.get("ci95") or [None, None])[:2]
        body.append(
            [
                Cell(name, "text"),
                d.get("parent"),
                d.get("child"),
                d.get("delta"),
                Cell(f"[{display(low)}, {display(high)}]", "text"),
            ]
        )
    if body:
        out.append(
            table(
                ["metric", "parent", "this run", "change", "95% interval"], body, columns=["text"]
            )
        )
    decisions = diff.get("decisions") or {}
    before, after = decisions.get("parent") or {}, decisions.get("child") or {}
    if before or after:
        out.append(
            tag(
                "p",
                f"Gate decision: {before.get('decision', 'none')} -> "
                f"{after.get('decision', 'none')}.",
            )
        )
    changed = decisions.get("constraints_changed") or []
    out.extend(
        tag(
            "p",
            f"{c.get('constraint')}: {(c.get('parent') or {}).get('status')} -> "
            f"{(c.get('child') or {}).get('status')}",
        )
        for c in changed
    )
    return "".join(out)


def render_report(audit: dict[str, Any], diff: dict[str, Any] | None = None) -> str:
    """The whole report as one HTML string; ``diff`` (the run's ``diff.json``) adds the changes
    against its parent run after the audit's own sections."""
    meta = audit.get("meta", {})
    title = f"ethos audit: {meta.get('run_id') or meta.get('source', '')}"
    about = (
        f"{meta.get('rows', '?')} rows; data {meta.get('data', meta.get('source', ''))}; "
        f"created {meta.get('created_utc', '')}"
    )
    parts = [tag("p", about, class_="note"), _banner(audit), _summary(audit)]
    for name, render in SECTIONS.items():
        section = audit.get(name)
        if isinstance(section, dict) and section:
            try:
                parts.append(render(section))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                parts.append(
                    tag("h2", name)
                    + tag("p", f"could not draw this section ({exc}); raw values:", class_="note")
                    + tag("pre", json.dumps(section, indent=1)[:20000])
                )
    if diff:
        parts.append(_changes(diff))
    parts.append(tag("h2", "About this audit", id="meta") + tag("pre", json.dumps(meta, indent=1)))
    return page(title, parts, css=CSS)
