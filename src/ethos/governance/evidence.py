"""Thin evidence: when a constraint's interval straddles its limit, and what would settle it.

A constrained value's 95 % interval that contains the policy's limit cannot tell PASS from FAIL:
the point estimate may hold while the truth breaks the limit, or the other way round. A policy
chooses per constraint (``on_thin_evidence``) whether that is a REVIEW (a human judges, as
before) or ``INSUFFICIENT_EVIDENCE`` (nobody can judge yet: label more examples). For the second
the gate says how many: the fairness disparity behind the constraint is a difference (or ratio)
of one rate between the two extreme groups, so :func:`ethos.stats.power.required_n_for_margin`
gives the rows each group needs for the difference's interval to clear the limit with the
policy's power at its alpha, at the observed rates, with both groups growing in their current
proportion. Rows are counted in the rate's own denominator (positives for TPR, negatives for FPR,
predicted positives for PPV) and turned into labelled examples of the group at its observed
share. Other metrics (accuracy, calibration, ...) get no per-group estimate and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ethos.governance.policy import Constraint, EvidenceSettings
from ethos.stats.power import NEVER, additional_examples, required_n_for_margin

RATES_OF_DISPARITY: dict[str, tuple[str, ...]] = {
    "demographic_parity_difference": ("selection_rate",),
    "demographic_parity_ratio": ("selection_rate",),
    "disparate_impact_ratio": ("selection_rate",),
    "equal_opportunity_difference": ("tpr",),
    "equalized_odds_difference": ("tpr", "fpr"),
    "equalized_odds_ratio": ("tpr", "fpr"),
    "predictive_parity_difference": ("ppv",),
}
"""The per-group rate(s) each disparity is built from (equalized odds: the worse of the two)."""


@dataclass(frozen=True)
class GroupNeed:
    """How many more labelled examples of one group would settle a constraint."""

    attribute: str
    group: str
    rate: str
    observed_rate: float
    rows: int
    """The group's rows in the test part."""
    denominator: int
    """Of those, the rows the rate is computed over (positives for TPR, ...)."""
    required_denominator: float
    additional_examples: float
    """More labelled rows of the group (math.inf: no number of examples settles it)."""

    def to_dict(self) -> dict[str, Any]:
        extra = self.additional_examples
        return {
            "attribute": self.attribute,
            "group": self.group,
            "rate": self.rate,
            "observed_rate": self.observed_rate,
            "rows": self.rows,
            "denominator": self.denominator,
            "required_denominator": None
            if math.isinf(self.required_denominator)
            else math.ceil(self.required_denominator),
            "additional_examples": None if math.isinf(extra) else int(extra),
        }

    def sentence(self) -> str:
        if math.isinf(self.additional_examples):
            return f"{self.attribute}={self.group}: no number of examples settles it"
        return (
            f"{self.attribute}={self.group}: label about {int(self.additional_examples)} more "
            f"examples ({self.rate} {self.observed_rate:.3f} over {self.denominator} of its "
            f"{self.rows} rows now)"
        )


def straddles(constraint: Constraint, low: float | None, high: float | None) -> bool:
    """Whether the interval [low, high] holds on one side of the limit and breaks on the other."""
    if low is None or high is None or constraint.op in ("==", "!="):
        return False
    return constraint.holds(low) != constraint.holds(high)


def examples_needed(
    constraint: Constraint,
    resolved: str | None,
    audit: dict[str, Any] | None,
    settings: EvidenceSettings,
) -> list[GroupNeed]:
    """Per group behind a fairness disparity, the labelled examples that would settle it; empty
    for a metric that is not a group disparity (the caller says so)."""
    parts = (resolved or "").split(".")
    if len(parts) < 5 or parts[:2] != ["audit", "fairness"] or parts[3] != "disparities":
        return []
    attribute, disparity = parts[2], parts[4]
    section = ((audit or {}).get("fairness") or {}).get(attribute) or {}
    groups = {
        str(name): row
        for name, row in (section.get("groups") or {}).items()
        if isinstance(row, dict) and row.get("used_for_disparities")
    }
    rates = [r for r in RATES_OF_DISPARITY.get(disparity, ()) if _spread(groups, r) is not None]
    if not rates:
        return []
    # The disparity's value is the widest spread among its rates (equalized odds: the larger of
    # the TPR and FPR gaps, or the smaller ratio): that rate is the one to measure better.
    if disparity.endswith("_ratio"):
        rate = min(rates, key=lambda r: _ratio(groups, r))
    else:
        rate = max(rates, key=lambda r: _spread(groups, r) or 0.0)
    return _needs_for_rate(attribute, rate, groups, disparity, constraint.value, settings)


def left_out_groups(resolved: str | None, audit: dict[str, Any] | None) -> list[str]:
    """Groups of the disparity's attribute that the audit left out of it (below the run's
    ``min_group_size``), as "group (n rows)": reported, so that a small group is never silently
    missing from what the gate asks for."""
    parts = (resolved or "").split(".")
    if len(parts) < 5 or parts[:2] != ["audit", "fairness"]:
        return []
    section = ((audit or {}).get("fairness") or {}).get(parts[2]) or {}
    return [
        f"{name} ({row.get('count')} rows)"
        for name, row in (section.get("groups") or {}).items()
        if isinstance(row, dict) and not row.get("used_for_disparities")
    ]


def _rates(groups: dict[str, dict[str, Any]], rate: str) -> list[float]:
    return [
        float(row[rate])
        for row in groups.values()
        if isinstance(row.get(rate), int | float) and math.isfinite(float(row[rate]))
    ]


def _spread(groups: dict[str, dict[str, Any]], rate: str) -> float | None:
    values = _rates(groups, rate)
    return max(values) - min(values) if len(values) >= 2 else None


def _ratio(groups: dict[str, dict[str, Any]], rate: str) -> float:
    values = _rates(groups, rate)
    return min(values) / max(values) if max(values) > 0 else 1.0


def _needs_for_rate(
    attribute: str,
    rate: str,
    groups: dict[str, dict[str, Any]],
    disparity: str,
    limit: float,
    settings: EvidenceSettings,
) -> list[GroupNeed]:
    rated = {
        name: (float(row[rate]), _denominator(row, rate), int(row.get("count") or 0))
        for name, row in groups.items()
        if isinstance(row.get(rate), int | float) and math.isfinite(float(row[rate]))
    }
    if len(rated) < 2:
        return []
    high = max(rated, key=lambda g: rated[g][0])
    low = min(rated, key=lambda g: rated[g][0])
    (p_high, n_high, rows_high), (p_low, n_low, rows_low) = rated[high], rated[low]
    if n_high < 1 or n_low < 1:
        return []
    observed = p_high - p_low
    # The limit as a difference of the two rates: a ratio limit r means p_low = r * p_high.
    limit_difference = p_high * (1.0 - limit) if disparity.endswith("_ratio") else limit
    margin = abs(observed - limit_difference)
    required_high = required_n_for_margin(
        p_high,
        p_low,
        margin,
        confidence=1.0 - settings.alpha,
        ratio=n_low / n_high,
        power=settings.power,
    )
    required_low = NEVER if math.isinf(required_high) else required_high * n_low / n_high
    needs = []
    for group, p, n, rows, required in (
        (high, p_high, n_high, rows_high, required_high),
        (low, p_low, n_low, rows_low, required_low),
    ):
        share = n / rows if rows else 0.0
        extra_denominator = additional_examples(required, n)
        extra_rows = (
            NEVER
            if math.isinf(extra_denominator) or share == 0.0
            else math.ceil(extra_denominator / share)
        )
        needs.append(GroupNeed(attribute, group, rate, p, rows, n, required, extra_rows))
    return needs


def _denominator(row: dict[str, Any], rate: str) -> int:
    """The rows a group's rate is computed over."""
    count = float(row.get("count") or 0)
    base = float(row.get("base_rate") or 0.0)
    selection = float(row.get("selection_rate") or 0.0)
    share = {"tpr": base, "fpr": 1.0 - base, "ppv": selection}.get(rate, 1.0)
    return round(count * share)
