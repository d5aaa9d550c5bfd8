"""Group confusion counts and a stratified bootstrap over them.

Written by hand, on purpose: every fairness disparity ethos reports is a function of the per-group
confusion matrices, so one vectorised count core serves the point estimates and all bootstrap
resamples at once. Calling fairlearn's ``MetricFrame`` once per resample (1000 times per attribute)
costs seconds to minutes; this costs milliseconds. ``group_metrics`` still uses ``MetricFrame``, and
the tests check that both agree.

The bootstrap resamples rows with replacement *within each group* (stratified by group, so every
resample keeps the observed group sizes). Because the statistics depend on a resample only through
its per-group confusion counts, resampling the ``n_g`` rows of group ``g`` is drawn exactly, in
distribution, as one multinomial draw of ``n_g`` over that group's observed confusion cells
(Efron & Tibshirani 1993, ch. 6: the bootstrap distribution of a statistic of the empirical
distribution). That replaces ``n_resamples x n_rows`` index draws with ``n_resamples x K^2`` counts.
"""

from __future__ import annotations

import zlib

import numpy as np


def confusion_by_group(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, *, n_groups: int, n_classes: int
) -> np.ndarray:
    """Confusion matrices per group, shape ``(n_groups, n_classes, n_classes)``.

    ``[g, i, j]`` counts rows of group code ``g`` with true class code ``i`` predicted as ``j``
    (scikit-learn's ``confusion_matrix`` orientation).
    """
    cell = (groups * n_classes + y_true) * n_classes + y_pred
    counts = np.bincount(cell, minlength=n_groups * n_classes * n_classes)
    return counts.reshape(n_groups, n_classes, n_classes)


def resample_confusion(
    confusion: np.ndarray, *, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Stratified-bootstrap resamples of per-group confusion matrices.

    Returns shape ``(n_resamples, n_groups, K, K)``; group ``g`` of every resample holds exactly
    as many rows as ``confusion[g]`` (see the module docstring for why a multinomial draw is the
    same as resampling that group's rows with replacement).
    """
    n_groups, k, _ = confusion.shape
    out = np.empty((n_resamples, n_groups, k * k), dtype=np.int64)
    for g in range(n_groups):
        cells = confusion[g].reshape(-1)
        total = int(cells.sum())
        if total == 0:
            out[:, g, :] = 0
            continue
        out[:, g, :] = rng.multinomial(total, cells / total, size=n_resamples)
    return out.reshape(n_resamples, n_groups, k, k)


def percentile_interval(samples: np.ndarray, *, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval (Efron & Tibshirani 1993, ch. 13) over defined resamples.

    Returns ``(nan, nan)`` when no resample gives a defined value.
    """
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def rng_for(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key`` (not on the order keys are visited)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
