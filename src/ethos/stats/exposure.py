"""Canary exposure (Carlini, Liu, Erlingsson, Kos & Song, "The Secret Sharer", USENIX Security
2019): how far a language model has memorised one secret it saw in training.

A canary is a sentence with a random secret drawn from a space ``R`` of ``|R|`` possible secrets
("my PIN is 4 7 1 9"). After training, every candidate secret is scored by the model (its
log-perplexity, lower: more likely) and the canary's *rank* is its position among them (1: the
model finds the true secret likeliest). The exposure is

    exposure = log2 |R| - log2 rank,

between 0 (the canary ranks last) and ``log2 |R|`` (it ranks first). A canary the model never saw
ranks uniformly at random, and its expected exposure is ``log2 |R| - E[log2 rank]``, about
``1 / ln 2 = 1.44`` bits for a large space: "near chance" is about 1.4 bits and "memorised" is near
``log2 |R|``.

Ranking every candidate is impossible for large spaces; the paper estimates the rank from a
sample of candidates instead (their section 4.3): with the canary's score ``x`` and scores of
random candidates, ``rank / |R| ~ P[X <= x]``, so ``exposure ~ -log2 P[X <= x]``. This module
gives the exact form, the sampled estimate (the empirical fraction, with a +1 so that a canary
scoring best of ``n`` samples gets about ``log2(n + 1)``, not infinity), and the paper's
extrapolation through a fitted skew-normal for canaries beyond the sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ethos.errors import EthosError


class ExposureError(EthosError, ValueError):
    """A rank, space size or score sample that cannot give an exposure."""


def exposure(rank: int, space_size: int) -> float:
    """``log2(space_size) - log2(rank)`` for a canary ranked ``rank`` (1 = likeliest) of
    ``space_size`` candidates."""
    if isinstance(rank, bool) or isinstance(space_size, bool):
        raise ExposureError("rank and space_size are whole numbers, not booleans")
    if space_size < 1:
        raise ExposureError(f"space_size {space_size} must be at least 1")
    if not 1 <= rank <= space_size:
        raise ExposureError(f"rank {rank} is outside 1..{space_size}")
    return math.log2(space_size) - math.log2(rank)


def rank_of(canary_score: float, candidate_scores: Sequence[float] | np.ndarray) -> int:
    """The canary's rank among itself and ``candidate_scores`` (log-perplexities, lower is
    likelier); ties count against the canary (a tie is not memorisation)."""
    scores = _finite(candidate_scores, "candidate_scores")
    if not math.isfinite(canary_score):
        raise ExposureError(f"canary_score {canary_score} is not a finite number")
    return 1 + int(np.sum(scores <= canary_score))


def sampled_exposure(canary_score: float, sample_scores: Sequence[float]) -> float:
    """``-log2`` of the share of random candidates scoring at least as well as the canary,
    counting the canary itself: ``log2(n + 1) - log2(rank)`` over the ``n`` sampled scores."""
    scores = _finite(sample_scores, "sample_scores")
    return exposure(rank_of(canary_score, scores), len(scores) + 1)


def extrapolated_exposure(canary_score: float, sample_scores: Sequence[float]) -> float:
    """The paper's estimate for a canary beyond the sample: fit a skew-normal to the sampled
    log-perplexities and take ``-log2`` of its CDF at the canary's score."""
    from scipy import stats

    scores = _finite(sample_scores, "sample_scores")
    if len(scores) < 10:
        raise ExposureError(
            f"{len(scores)} sample scores are too few to fit a distribution",
            hint="score at least a few hundred random candidates",
        )
    if not math.isfinite(canary_score):
        raise ExposureError(f"canary_score {canary_score} is not a finite number")
    shape, location, scale = stats.skewnorm.fit(scores)
    log_cdf = float(stats.skewnorm.logcdf(canary_score, shape, location, scale))
    return max(0.0, -log_cdf / math.log(2))


def _finite(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ExposureError(f"{name} must be a non-empty list of scores")
    if not np.all(np.isfinite(array)):
        raise ExposureError(f"{name} holds a value that is not a finite number")
    return array
