"""Drift statistics: short pure functions comparing live inputs and outputs with a reference.

Each takes arrays and returns numbers; the monitor (``monitor.py``) keeps the windows and decides
when a number is an alert. Formulas and sources are in the docstrings.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats


def probability_edges(bins: int = 10) -> NDArray[np.float64]:
    """Fixed, equal-width edges on [0, 1] for binning probabilities.

    Probabilities have a known range, so fixed edges make the histograms of two windows (and of
    two models) comparable, and a model that piles its scores into one corner shows as such.
    """
    return np.linspace(0.0, 1.0, bins + 1)


def quantile_edges(reference: ArrayLike, bins: int = 10) -> NDArray[np.float64]:
    """Edges at the reference's quantiles, so each bin holds about 1/bins of the reference.

    Repeated quantiles (a discrete quantity such as a length in tokens) are merged, so there can
    be fewer bins than asked for. The outer edges are the reference's minimum and maximum; values
    beyond them are counted in the end bins (see :func:`bin_shares`).
    """
    values = np.asarray(reference, dtype=float)
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))


def bin_shares(values: ArrayLike, edges: ArrayLike) -> NDArray[np.float64]:
    """The share of ``values`` in each bin; values outside the outer edges count in the end bins.

    Bin i holds ``edges[i] <= v < edges[i + 1]`` (the last bin also its upper edge). Clipping to
    the end bins rather than dropping keeps a live value larger than any seen in the reference
    visible as drift instead of silently ignored.
    """
    inner = np.asarray(edges, dtype=float)[1:-1]
    data = np.asarray(values, dtype=float).ravel()
    counts = np.bincount(np.searchsorted(inner, data, side="right"), minlength=len(inner) + 1)
    return counts / max(len(data), 1)


def population_stability_index(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    bins: int = 10,
    edges: ArrayLike | None = None,
    eps: float = 1e-4,
) -> float:
    """Population stability index of ``current`` against ``reference``.

    PSI = Σᵢ (cᵢ - rᵢ) · ln(cᵢ / rᵢ), where rᵢ and cᵢ are the shares of the reference and current
    samples in bin i: the symmetrised Kullback-Leibler divergence of the two binned distributions
    (Yurdakul 2018, "Statistical properties of the population stability index", Western Michigan
    University; Siddiqi 2006, "Credit Risk Scorecards", Wiley, ch. 12). Rule of thumb: below 0.1 no
    shift, 0.1 to 0.2 moderate, above 0.2 significant.

    Bins: ``edges`` if given (use :func:`probability_edges` for probabilities, fixed equal-width
    bins on [0, 1]); otherwise ``bins`` quantile bins of the reference (:func:`quantile_edges`),
    each holding about the same share of it. An empty bin's share is floored at ``eps`` so the
    logarithm stays finite; PSI then grows with how empty the bin is rather than being infinite.
    Two identical samples give 0. Sampling alone gives about (bins - 1)(1/n + 1/m) on average.
    """
    bounds = quantile_edges(reference, bins) if edges is None else np.asarray(edges, dtype=float)
    r = np.maximum(bin_shares(reference, bounds), eps)
    c = np.maximum(bin_shares(current, bounds), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_statistic(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and its two-sided p-value.

    D = supₓ |F_ref(x) - F_cur(x)|, the largest vertical distance between the two empirical
    cumulative distribution functions (Kolmogorov 1933, Smirnov 1939); computed by
    ``scipy.stats.ks_2samp`` (exact p-value for small samples, asymptotic otherwise). Unlike PSI
    it needs no bins; it is most sensitive to shifts near the middle of the distribution.
    """
    result = stats.ks_2samp(np.asarray(reference, dtype=float), np.asarray(current, dtype=float))
    return float(result.statistic), float(result.pvalue)


def words(text: str) -> list[str]:
    """Whitespace-separated words, lower-cased, with leading and trailing punctuation removed.

    Punctuation is any Unicode character of category P (so “quotes” and ¿ go too); a word that
    was only punctuation is dropped.
    """
    out = []
    for raw in text.lower().split():
        start, end = 0, len(raw)
        while start < end and unicodedata.category(raw[start]).startswith("P"):
            start += 1
        while end > start and unicodedata.category(raw[end - 1]).startswith("P"):
            end -= 1
        if start < end:
            out.append(raw[start:end])
    return out


def oov_rate(text: str, vocab: Collection[str]) -> float:
    """Share of the words of ``text`` (see :func:`words`) that are not whole entries of ``vocab``.

    ``vocab`` is the tokenizer's WordPiece vocabulary as a set of strings. A word that is not an
    entry is one the model only sees as sub-word pieces (``##`` continuations), which is where
    jargon, misspellings and other languages end up; a rising rate says the inputs use words the
    model's pre-training rarely saw. A text with no words has rate 0.
    """
    found = words(text)
    if not found:
        return 0.0
    return sum(w not in vocab for w in found) / len(found)


def embedding_mean_shift(
    reference_mean: ArrayLike, reference_std: ArrayLike, current: ArrayLike
) -> float:
    """How far the mean embedding of ``current`` moved, in units of the reference spread.

    shift = ‖mean(current) - μ_ref‖₂ / ‖s_ref‖₂, with μ_ref and s_ref the per-dimension mean and
    standard deviation of the reference embeddings, and ``current`` an (n, d) array. The
    denominator is √(Σⱼ s_j²), the root of the reference's total variance: a single reference
    embedding lies on average about 1 from μ_ref in these units, and the mean of n embeddings
    drawn from the reference about 1/√n (0.07 for n = 200), so values well above that mean the
    inputs moved as a whole. A mean-difference statistic in the spirit of the maximum mean
    discrepancy with a linear kernel (Gretton et al. 2012), scaled to be unit-free.
    """
    mean = np.asarray(reference_mean, dtype=float)
    spread = float(np.linalg.norm(np.asarray(reference_std, dtype=float)))
    rows = np.asarray(current, dtype=float).reshape(-1, mean.shape[0])
    return float(np.linalg.norm(rows.mean(axis=0) - mean) / max(spread, 1e-12))


def rate_gap(rates: Sequence[float]) -> float:
    """Largest minus smallest of per-group rates, 0 for fewer than two groups.

    Over positive rates it is the demographic parity difference (Dwork et al. 2012), over
    true-positive rates the equal opportunity difference (Hardt et al. 2016).
    """
    return float(max(rates) - min(rates)) if len(rates) > 1 else 0.0
