"""The names of the audit's group metrics and disparities, with no code behind them.

A policy names metrics (``fairness.*.disparities.equalized_odds_difference.value``); checking those
names needs the vocabulary, not fairlearn and scikit-learn, which computing them needs. Keeping the
names here lets governance (and everything that records to the ledger: the neuro sink, the genome
review) validate a policy without importing the audit. :mod:`ethos.audit.fairness` computes
exactly these (a test keeps the two in step).
"""

from __future__ import annotations

GROUP_METRIC_COLUMNS = (
    "count",
    "base_rate",
    "selection_rate",
    "accuracy",
    "tpr",
    "fpr",
    "fnr",
    "ppv",
    "npv",
)
"""Per-group rates in audit.json's ``fairness.<attribute>.groups`` rows."""

DISPARITY_NAMES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "disparate_impact_ratio",
    "predictive_parity_difference",
)
"""Disparities in ``fairness.<attribute>.disparities``; a ``*_ratio``'s worst case is its minimum,
every other's its maximum."""
