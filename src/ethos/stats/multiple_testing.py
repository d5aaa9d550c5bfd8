"""Benjamini-Hochberg control of the false discovery rate, in plain numpy.

Why here and not statsmodels: ``statsmodels.stats.multitest.multipletests(method="fdr_bh")`` is
the reference (the tests compare against it), but it is a large dependency for ten lines, and
ethos only needs the step-up adjustment. Why BH and not Bonferroni: a slice search runs hundreds
of overlapping tests; Bonferroni controls the chance of *any* false alarm and so misses real
slices, while BH controls the expected *share* of false alarms among what is reported, which is
what a reviewer reading a list of slices cares about. BH holds for independent tests and for
positively dependent ones (PRDS; Benjamini & Yekutieli 2001), which covers overlapping slices
tested one-sided against their complements.

Where the tests may be *negatively* dependent (disjoint slices of one attribute compete for the
same errors), :func:`by_adjusted` gives the Benjamini-Yekutieli variant, valid under any
dependence at the price of a factor ``sum_{i<=m} 1/i`` (about ``ln m + 0.58``).

Sources: Benjamini & Hochberg 1995, "Controlling the false discovery rate: a practical and powerful
approach to multiple testing", J. R. Stat. Soc. B 57(1), 289-300; Benjamini & Yekutieli 2001, "The
control of the false discovery rate in multiple testing under dependency", Ann. Stat. 29(4).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _p_values(p_values: Any) -> np.ndarray:
    """``p_values`` as a 1-D float array, or ``ValueError`` naming what is wrong."""
    array = np.asarray(p_values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"p-values must be 1-D, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"p-values contain {int(np.isnan(array).sum())} NaN values")
    if ((array < 0.0) | (array > 1.0)).any():
        raise ValueError("p-values must lie in [0, 1]")
    return array


def bh_adjusted(p_values: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values, in the input's order.

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m):
    ``adj_(i) = min(1, min_{j >= i} m * p_(j) / j)`` -- the step-up rule written as adjusted
    values, so ``adj <= q`` is exactly BH's rejection set at FDR ``q`` and adjusted values are
    monotone in the raw ones. Ties get equal adjusted values. An empty input gives an empty array.
    """
    p = _p_values(p_values)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    stepped_up = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(m, dtype=float)
    adjusted[order] = np.minimum(stepped_up, 1.0)
    return adjusted


def by_adjusted(p_values: Any) -> np.ndarray:
    """Benjamini-Yekutieli adjusted p-values: ``min(1, c(m) * BH-adjusted)``, ``c(m) = sum 1/i``.

    BH run at level ``q / c(m)``, which controls the FDR at ``q`` under arbitrary dependence
    (Benjamini & Yekutieli 2001, theorem 1.3); statsmodels calls it ``fdr_by``.
    """
    p = _p_values(p_values)
    harmonic = float(np.sum(1.0 / np.arange(1, len(p) + 1)))
    return np.minimum(bh_adjusted(p) * harmonic, 1.0)


def reject(p_values: Any, *, fdr: float = 0.1, dependence: str = "positive") -> np.ndarray:
    """Which hypotheses are rejected at false discovery rate ``fdr`` (boolean, input order):
    BH for independent or positively dependent tests, BY for ``dependence="arbitrary"``."""
    if not 0.0 < fdr < 1.0:
        raise ValueError(f"fdr must be in (0, 1), got {fdr}")
    if dependence not in ("positive", "arbitrary"):
        raise ValueError(f"dependence must be 'positive' or 'arbitrary', got {dependence!r}")
    adjusted = bh_adjusted(p_values) if dependence == "positive" else by_adjusted(p_values)
    return adjusted <= fdr
