"""Canary exposure (Carlini et al. 2019, "The Secret Sharer"): the definition's values, the
sampled and extrapolated estimates against the exact form, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ethos.stats.exposure import (
    ExposureError,
    exposure,
    extrapolated_exposure,
    rank_of,
    sampled_exposure,
)


def test_a_nine_digit_secret_ranked_first_has_the_papers_maximum_of_29_9_bits() -> None:
    """The paper's running example: a 9-digit number, |R| = 10^9, log2 10^9 = 29.897 bits."""
    assert exposure(1, 10**9) == pytest.approx(29.897, abs=1e-3)
    assert exposure(10**9, 10**9) == 0.0
    assert exposure(2**10, 2**20) == pytest.approx(10.0)


def test_an_unseen_canary_has_about_1_44_bits_on_average() -> None:
    """A uniformly random rank: E[log2 N - log2 r] -> 1 / ln 2 for large N."""
    space = 100_000
    mean = np.mean([exposure(r, space) for r in range(1, space + 1)])
    assert mean == pytest.approx(1 / math.log(2), abs=0.01)


def test_sampled_exposure_is_the_exact_one_when_the_sample_is_the_whole_space() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=999)
    canary = float(np.sort(scores)[9]) - 1e-9  # better than all but 9 of the others
    assert rank_of(canary, scores) == 10
    assert sampled_exposure(canary, scores) == pytest.approx(exposure(10, 1000))
    assert rank_of(float(scores[0]), scores) >= 2  # a tie counts against the canary


def test_extrapolation_recovers_a_known_tail_probability() -> None:
    """Normal log-perplexities, canary at z = -3: -log2 Phi(-3) = 9.53 bits."""
    rng = np.random.default_rng(1)
    sample = rng.normal(loc=50.0, scale=4.0, size=5000)
    expected = -math.log2(stats.norm.cdf(-3.0))
    assert expected == pytest.approx(9.53, abs=0.01)
    assert extrapolated_exposure(50.0 - 3 * 4.0, sample) == pytest.approx(expected, abs=0.5)
    assert extrapolated_exposure(80.0, sample) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: exposure(0, 10), "outside 1..10"),
        (lambda: exposure(11, 10), "outside 1..10"),
        (lambda: exposure(1, 0), "at least 1"),
        (lambda: exposure(True, 10), "not booleans"),
        (lambda: sampled_exposure(1.0, []), "non-empty"),
        (lambda: sampled_exposure(float("nan"), [1.0]), "not a finite number"),
        (lambda: sampled_exposure(1.0, [1.0, float("inf")]), "not a finite number"),
        (lambda: extrapolated_exposure(1.0, [1.0] * 5), "too few"),
    ],
)
def test_bad_input_is_a_clear_error(call: object, message: str) -> None:
    with pytest.raises(ExposureError, match=message):
        call()  # type: ignore[operator]
