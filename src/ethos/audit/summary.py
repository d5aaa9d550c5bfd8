"""Red / amber / green per audit dimension: a screening summary for the report's first screen.

These thresholds are deliberately simple and documented here, not a verdict: the governance
policy (``ethos gate``) is where an organisation's own limits decide PASS / REVIEW / FAIL. Green
means "nothing flagged by these screens", amber "look closer", red "a large effect", grey "not
measured".
"""

from __future__ import annotations

import math
from typing import Any

SCREENS = {
    "fairness": "worst equalized-odds difference < 0.10 green, < 0.20 amber; a failed "
    "four-fifths screen is at least amber",
    "calibration": "ECE (15 equal-width bins) < 0.05 green, < 0.10 amber",
    "robustness": "worst flip rate over perturbation families < 0.05 green, < 0.15 amber",
    "explanations": "attribution completeness within tolerance green, else amber",
    "privacy": "membership-inference AUC < 0.55 green, < 0.60 amber; PII found is at least amber",
}


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
    return status, reasons


def summarise(audit: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{dimension: {"status", "reasons", "screen"}}`` for each dimension of an audit."""
    out: dict[str, dict[str, Any]] = {}
    for dimension, screen in SCREENS.items():
        section = audit.get(dimension)
        status, reasons = "grey", ["not measured"]
        if isinstance(section, dict) and section:
            if dimension == "fairness":
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
        out[dimension] = {"status": status, "reasons": reasons, "screen": screen}
    return out
