"""The groups that decide a fairness disparity, and the rows each group's rate rests on.

A disparity is a gap (or ratio) of one group rate between the group with the highest rate and the
group with the lowest, among the groups large enough to be compared; for equalized odds the rate
is whichever of TPR and FPR gives the reported value. Both the gate's small-group warnings
(:mod:`ethos.governance.sample_size`) and its evidence estimate (:mod:`ethos.governance.evidence`)
need those groups and each rate's own denominator (positives for TPR, negatives for FPR,
predicted positives for PPV), recovered from audit.json's group rows: positives = count x
base_rate, predicted positives = count x selection_rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

RATES: dict[str, tuple[str, ...]] = {
    "demographic_parity_difference": ("selection_rate",),
    "demographic_parity_ratio": ("selection_rate",),
    "disparate_impact_ratio": ("selection_rate",),
    "equal_opportunity_difference": ("tpr",),
    "equalized_odds_difference": ("tpr", "fpr"),
    "equalized_odds_ratio": ("tpr", "fpr"),
    "predictive_parity_difference": ("ppv",),
}
"""Disparity -> the group rates it is a gap or ratio of (``ethos.audit.fairness.DISPARITIES``)."""

DENOMINATORS: dict[str, str] = {
    "selection_rate": "rows",
    "accuracy": "rows",
    "base_rate": "rows",
    "tpr": "positives",
    "fnr": "positives",
    "fpr": "negatives",
    "ppv": "predicted positives",
    "npv": "predicted negatives",
}
"""Group rate -> what it is computed from (its denominator)."""


def number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def rows_behind(row: Mapping[str, Any], rate: str) -> int | None:
    """How many rows a group's ``rate`` was computed from (its denominator)."""
    count = number(row.get("count"))
    if count is None:
        return None
    base, selected = number(row.get("base_rate")), number(row.get("selection_rate"))
    share = {
        "positives": base,
        "negatives": None if base is None else 1 - base,
        "predicted positives": selected,
        "predicted negatives": None if selected is None else 1 - selected,
    }.get(DENOMINATORS.get(rate, "rows"), 1.0)
    return None if share is None else round(count * share)


def _spread(values: list[float], ratio: bool) -> float:
    low, high = min(values), max(values)
    if ratio:
        return low / high if high > 0 else math.nan
    return high - low


def deciding_groups(
    groups: Mapping[str, Any], disparity: str, value: float
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(group, rate, row) for the groups with the highest and the lowest rate of the rate the
    disparity's value comes from (for equalized odds, whichever of TPR and FPR gives it)."""
    used = {
        g: row
        for g, row in groups.items()
        if isinstance(row, Mapping) and row.get("used_for_disparities", True)
    }
    best: tuple[float, str] | None = None
    for rate in RATES.get(disparity, ()):
        defined = [v for row in used.values() if (v := number(row.get(rate))) is not None]
        if len(defined) < 2:
            continue
        distance = abs(_spread(defined, disparity.endswith("_ratio")) - value)
        if best is None or distance < best[0]:
            best = (distance, rate)
    if best is None:
        return []
    rate = best[1]
    values = {g: v for g, row in used.items() if (v := number(row.get(rate))) is not None}
    extremes = (min(values.values()), max(values.values()))
    return [
        (g, rate, used[g])
        for g, v in values.items()
        if any(math.isclose(v, e, abs_tol=1e-12) for e in extremes)
    ]
