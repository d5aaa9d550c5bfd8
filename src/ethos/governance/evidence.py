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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ethos.governance.deciding_groups import deciding_groups, rows_behind
from ethos.governance.policy import Constraint, EvidenceSettings
from ethos.stats.power import NEVER, additional_examples, required_n_for_margin


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
    value: float,
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
    deciding = deciding_groups(section.get("groups") or {}, disparity, value)
    if len(deciding) < 2:
        return []
    rate = deciding[0][1]
    high = max(deciding, key=lambda d: float(d[2][rate]))
    low = min(deciding, key=lambda d: float(d[2][rate]))
    return _needs(
        attribute,
        rate,
        (high[0], high[2]),
        (low[0], low[2]),
        disparity,
        float(constraint.value),
        settings,
    )


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


def _needs(
    attribute: str,
    rate: str,
    highest: tuple[str, Mapping[str, Any]],
    lowest: tuple[str, Mapping[str, Any]],
    disparity: str,
    limit: float,
    settings: EvidenceSettings,
) -> list[GroupNeed]:
    """The examples each of the two deciding groups needs for the gap's interval to clear the
    limit, both groups growing in their current proportion."""
    (high, high_row), (low, low_row) = highest, lowest
    p_high, p_low = float(high_row[rate]), float(low_row[rate])
    n_high, n_low = rows_behind(high_row, rate) or 0, rows_behind(low_row, rate) or 0
    rows_high, rows_low = int(high_row.get("count") or 0), int(low_row.get("count") or 0)
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
