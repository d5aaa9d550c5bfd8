"""Red / amber / green per audit dimension: a screening summary for the report's first screen.

These thresholds are deliberately simple and documented here, not a verdict: the governance
policy (``ethos gate``) is where an organisation's own limits decide PASS / REVIEW / FAIL. Green
means "nothing flagged by these screens", amber "look closer", red "a large effect", grey "not
measured" or "not meaningful".

The informativeness screen comes first because it decides how to read four others. A model that
is not informative (:mod:`ethos.audit.informativeness`: a constant prediction, accuracy not above
the majority baseline, or AUROC not above chance) is red there, and its fairness, calibration,
robustness and slices screens are **grey** (a constant model's worst slices are just the slices
with the most rows of the other class), "not meaningful (model not informative)", with the measured
numbers kept after that reason. Grey, not amber: amber asks the reader to look closer at that
dimension, but there is nothing in it to find; the red informativeness screen is the finding.
Explanations and privacy keep their own status (attributions and membership leakage are about the
network, not its decisions).

The sample-size screen lists every group or intersection under the reliable-rate floor or left out
for ``min_group_size`` (:mod:`ethos.audit.sample_size`); amber when a compared group is under the
floor.
"""

from __future__ import annotations

import math
from typing import Any

from ethos.audit.informativeness import NOT_MEANINGFUL, is_not_informative
from ethos.audit.sample_size import RELIABLE_GROUP_SIZE, sample_size_screen

SCREENS = {
    "informativeness": "red when the model is not better than its baselines: one predicted class "
    "for all rows, accuracy not above the majority baseline, or AUROC's 95% bootstrap interval "
    "including 0.5; else green",
    "fairness": "worst equalized-odds difference < 0.10 green, < 0.20 amber; a failed "
    "four-fifths screen is at least amber",
    "calibration": "ECE (15 equal-width bins) < 0.05 green, < 0.10 amber",
    "robustness": "worst flip rate over perturbation families < 0.05 green, < 0.15 amber",
    "explanations": "attribution completeness within tolerance green, else amber",
    "privacy": "membership-inference AUC < 0.55 green, < 0.60 amber; PII found is at least amber; "
    "red when the canary audit's lower bound on ε exceeds the claimed ε",
    "slices": "no slice's error rate, FPR or FNR significantly above the rest's (FDR-adjusted) "
    "green; any such slice amber, red when its error-rate gap is 0.20 or more",
    "grounding": "a grounded run's retrieval and abstention: green when recall@5 is above 0.90, "
    "reading the retrieved passage costs at most 0.05 accuracy against the gold one, at least "
    "90% of out-of-domain questions abstain and no group's recall@1 trails another's by 0.10; "
    "red when recall@5 is 0.50 or less; else amber (only grounded runs have this screen)",
    "sample_size": f"groups under {RELIABLE_GROUP_SIZE} rows (rates unreliable) or under "
    "min_group_size (left out) are listed; amber when a compared group is under "
    f"{RELIABLE_GROUP_SIZE} rows",
}
ONLY_WHEN_MEASURED = ("grounding",)
"""Screens of one kind of run, left out of other runs' summaries rather than shown grey."""
MEANINGLESS_WHEN_UNINFORMATIVE = ("fairness", "calibration", "robustness", "slices")
"""Screens that read grey "not meaningful" for a model that is not informative."""


def _grade(value: float | None, green: float, amber: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "grey"
    return "green" if value < green else "amber" if value < amber else "red"


def _worse(a: str, b: str) -> str:
    order = ["grey", "green", "amber", "red"]
    return max(a, b, key=order.index)


def _fairness(section: dict[str, Any]) -> tuple[str, list[str]]:
    status, reasons = "grey", []
    for attribute, entry in section.items():
        if "*" in attribute:
            continue  # intersections are shown, but the screen uses single attributes
        value = entry.get("disparities", {}).get("equalized_odds_difference", {}).get("value")
        grade = _grade(value, 0.10, 0.20)
        status = _worse(status, grade)
        if value is not None:
            reasons.append(f"{attribute}: equalized-odds difference {value:.3f}")
        four_fifths = entry.get("four_fifths_rule", {})
        if four_fifths.get("evaluable") and not four_fifths.get("passes"):
            status = _worse(status, "amber")
            reasons.append(f"{attribute}: fails the four-fifths screen")
    if not reasons:
        sizes = sorted({str(e.get("min_group_size")) for e in section.values()})
        reasons.append(
            "no disparity computed: no attribute has two groups with at least min_group_size "
            f"({', '.join(sizes)}) rows"
        )
    return status, reasons


def _slices(section: dict[str, Any]) -> tuple[str, list[str]]:
    """Amber for any significant slice (look closer), red for a large error-rate gap."""
    if not section.get("n_slices_tested"):
        return "grey", ["no slice large enough to test"]
    found = section.get("top_slices") or []
    if not found:
        return "green", [f"no significant slice among {section['n_slices_tested']} tested"]
    gap = section.get("max_error_gap") or 0.0
    status = "red" if gap >= 0.20 else "amber"
    return status, [f"worst slice: {found[0]['description']} ({found[0]['metric']})"] + (
        [f"largest error-rate gap {gap:.3f}"] if gap else []
    )


def _informativeness(section: dict[str, Any]) -> tuple[str, list[str]]:
    if section.get("informative") is False:
        return "red", ["not informative", *(section.get("reasons") or [])]
    auroc = section.get("auroc") or {}
    accuracy, majority = section.get("accuracy"), section.get("majority_accuracy")
    reasons = []
    if isinstance(accuracy, float) and isinstance(majority, float):
        reasons.append(f"accuracy {accuracy:.3f} above the majority baseline {majority:.3f}")
    if isinstance(auroc.get("value"), float) and auroc.get("above_chance"):
        reasons.append(f"AUROC {auroc['value']:.3f}, 95% interval above 0.5")
    return "green", reasons or ["informative"]


def _dp_audit(found: Any, status: str, reasons: list[str]) -> tuple[str, list[str]]:
    """The canary audit's line; red when its lower bound refutes the claimed epsilon."""
    if not isinstance(found, dict) or not found.get("applicable"):
        return status, reasons
    lower, claimed = found.get("epsilon_lower_bound"), found.get("epsilon_claimed")
    level = found.get("confidence") or 0.0
    against = f"claimed ε {claimed:.3g}" if isinstance(claimed, float) else "no ε claimed"
    line = f"canary audit: ε ≥ {lower:.3g} at {level:.0%} confidence ({against})"
    if found.get("claim_refuted"):
        return "red", [*reasons, f"{line}: the privacy claim is refuted"]
    return status, [*reasons, line]


def _grounding(section: dict[str, Any]) -> tuple[str, list[str]]:
    recall = ((section.get("retrieval") or {}).get("recall@5") or {}).get("value")
    if recall is None:
        return "grey", ["no audited question has its gold passage in the knowledge base"]
    status = _grade(-recall, -0.90, -0.50)
    reasons = [f"recall@5 {recall:.3f}"]
    cost = (section.get("answers") or {}).get("retrieved_minus_gold")
    if cost is not None:
        reasons.append(f"retrieved - gold accuracy {cost:+.3f}")
        if cost < -0.05:
            status = _worse(status, "amber")
    ood = (section.get("abstention") or {}).get("out_of_domain") or {}
    if ood:
        reasons.append(f"out-of-domain abstained {ood['abstained']:.3f}")
        if ood["abstained"] < 0.90:
            status = _worse(status, "amber")
    for column, entry in (section.get("by_group") or {}).items():
        gap = entry.get("recall@1_gap") if isinstance(entry, dict) else None
        if gap is not None and gap > 0.10:
            status = _worse(status, "amber")
            reasons.append(f"recall@1 gap {gap:.3f} across {column}")
    return status, reasons


def summarise(audit: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{dimension: {"status", "reasons", "screen"}}`` for each dimension of an audit; the
    sample-size entry also holds ``warnings``, one dict per small group (see
    :func:`ethos.audit.sample_size.group_size_warnings`)."""
    out: dict[str, dict[str, Any]] = {}
    for dimension, screen in SCREENS.items():
        section = audit.get(dimension)
        if dimension in ONLY_WHEN_MEASURED and section is None:
            continue
        status, reasons = "grey", ["not measured"]
        extra: dict[str, Any] = {}
        if dimension == "sample_size":
            extra = sample_size_screen(audit)
            status, reasons = extra.pop("status"), extra.pop("reasons")
        elif isinstance(section, dict) and section:
            if dimension == "informativeness":
                status, reasons = _informativeness(section)
            elif dimension == "fairness":
                status, reasons = _fairness(section)
            elif dimension == "calibration":
                ece = section.get("overall", {}).get("ece", {}).get("uniform_15")
                status, reasons = _grade(ece, 0.05, 0.10), [f"ECE {ece:.3f}" if ece else "no ECE"]
            elif dimension == "robustness":
                worst = section.get("max_flip_rate")
                status = _grade(worst, 0.05, 0.15)
                reasons = [f"worst flip rate {worst:.3f}" if worst is not None else "no flips"]
            elif dimension == "explanations":
                within = section.get("completeness", {}).get("within_tolerance")
                status = "grey" if within is None else "green" if within else "amber"
                reasons = [f"completeness within tolerance: {within}"]
            elif dimension == "privacy":
                auc = section.get("membership_inference", {}).get("auc")
                status = _grade(auc, 0.55, 0.60)
                reasons = [f"membership-inference AUC {auc:.3f}" if auc else "no attack run"]
                if section.get("pii", {}).get("texts_with_pii"):
                    status = _worse(status, "amber")
                    reasons.append(f"PII in {section['pii']['texts_with_pii']} scanned texts")
                status, reasons = _dp_audit(section.get("dp_audit"), status, reasons)
            elif dimension == "slices":
                status, reasons = _slices(section)
            elif dimension == "grounding":
                status, reasons = _grounding(section)
        if dimension in MEANINGLESS_WHEN_UNINFORMATIVE and is_not_informative(audit):
            measured = [] if status == "grey" else [f"measured: {r}" for r in reasons]
            status, reasons = "grey", [NOT_MEANINGFUL, *measured]
        out[dimension] = {"status": status, "reasons": reasons, "screen": screen, **extra}
    return out
