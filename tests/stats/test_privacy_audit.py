"""One-run privacy audit (ethos.stats.privacy_audit): Steinke, Nasr & Jagielski (NeurIPS 2023).

Reference values: brute-force epsilon scans on scipy's binomial law (delta = 0 and delta > 0),
the closed form for all-correct guesses, and numbers from google-deepmind/jax_privacy
(``jax_privacy/auditing.py`` at commit 8967688c26d4, read with its ``dp_accounting`` import stubbed
out, nothing installed) and from that repository's own test ``test_epsilon_one_run_close``.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from scipy.special import expit, logit
from scipy.stats import binom, norm

from ethos.stats.privacy_audit import (
    best_one_run_bound,
    guesses_from_scores,
    one_run_epsilon_lower_bound,
)

EPS_GRID = np.arange(0.0, 12.0, 1e-4)


def brute_force_pure(correct: int, guesses: int, confidence: float) -> float:
    """Largest grid epsilon with ``P[Binomial(r, e^eps/(1+e^eps)) >= v] <= 1 - confidence``."""
    tail = binom.sf(correct - 1, guesses, expit(EPS_GRID))
    rejected = np.flatnonzero(tail <= 1.0 - confidence)
    return float(EPS_GRID[rejected[-1]]) if rejected.size else 0.0


def brute_force_approximate(
    correct: int, guesses: int, canaries: int, confidence: float, delta: float
) -> float:
    """The same scan for delta > 0, with Theorem 3.1's term written from tail differences:
    ``P[W >= v] + 2·m·delta·max_i (P[W >= v - i] - P[W >= v]) / i`` over ``i = 1..v``."""
    grid = np.arange(0.0, 8.0, 1e-3)
    q = expit(grid)[:, None]
    i = np.arange(1, correct + 1)[None, :]
    tail = binom.sf(correct - 1, guesses, q)
    ratio = np.max((binom.sf(correct - i - 1, guesses, q) - tail) / i, axis=1)
    p = np.minimum(1.0, tail[:, 0] + 2.0 * canaries * delta * ratio)
    rejected = np.flatnonzero(p <= 1.0 - confidence)
    return float(grid[rejected[-1]]) if rejected.size else 0.0


PURE_CASES = [
    (10, 10, 0.95),
    (9, 10, 0.95),
    (60, 100, 0.9),
    (95, 100, 0.95),
    (95, 100, 0.99),
    (700, 1000, 0.95),
    (990, 1000, 0.95),
    (1000, 1000, 0.95),
    (4400, 5000, 0.99),
    (51, 100, 0.6),
    (3, 3, 0.5),
]


@pytest.mark.parametrize(("correct", "guesses", "confidence"), PURE_CASES)
def test_delta_zero_matches_brute_force_scan_of_binomial_tail(
    correct: int, guesses: int, confidence: float
) -> None:
    ours = one_run_epsilon_lower_bound(correct, guesses, confidence=confidence)
    assert ours == pytest.approx(brute_force_pure(correct, guesses, confidence), abs=1e-3)


@pytest.mark.parametrize(
    ("correct", "guesses", "canaries", "confidence", "delta"),
    [(20, 20, 100, 0.95, 1e-3), (18, 20, 50, 0.95, 1e-4), (55, 60, 100, 0.9, 1e-2)],
)
def test_delta_positive_matches_brute_force_scan_of_theorem_3_1(
    correct: int, guesses: int, canaries: int, confidence: float, delta: float
) -> None:
    ours = one_run_epsilon_lower_bound(
        correct, guesses, confidence=confidence, delta=delta, canaries=canaries
    )
    expected = brute_force_approximate(correct, guesses, canaries, confidence, delta)
    assert ours == pytest.approx(expected, abs=2e-3)
    assert ours < one_run_epsilon_lower_bound(correct, guesses, confidence=confidence)


def test_all_correct_r1000_at_95_percent_is_ln_333() -> None:
    """All r guesses right: ``P[W >= r] = p^r <= beta`` gives ``p* = beta^(1/r)``, and
    ``eps = ln(p*/(1 - p*))``. With r = 1000, beta = 0.05: ``p* = exp(ln(0.05)/1000) =
    0.9970087``, ``1 - p* = 0.0029913``, ratio 333.3, so ``eps = ln(333.3) = 5.8091`` (roughly
    ``ln(r / ln(1/beta))``: r = 1000 guesses can never certify more than about 5.8)."""
    eps = one_run_epsilon_lower_bound(1000, 1000, confidence=0.95)
    assert math.isfinite(eps)
    assert eps == pytest.approx(5.809068, abs=1e-6)
    p_star = 0.05 ** (1 / 1000)
    assert eps == pytest.approx(math.log(p_star / (1 - p_star)), rel=1e-9)
    assert eps == pytest.approx(math.log(1000 / math.log(20)), abs=0.01)
    for r in (1, 10, 100, 10_000, 100_000):  # the same closed form for every r
        p_star = 0.05 ** (1 / r)
        expected = max(0.0, float(logit(p_star)))  # r = 1: one right guess proves nothing
        assert one_run_epsilon_lower_bound(r, r) == pytest.approx(expected, rel=1e-9)


# (correct, guesses, canaries, confidence, delta, eps from jax_privacy's _epsilon_one_run, whose
# root search stops at xtol = 1e-6). Its p-value is P[W >= v] + 2·m·delta·max_i P[v-i <= W < v]/i.
JAX_PRIVACY_VALUES = [
    (95, 100, 1000, 0.95, 1e-05, 2.165176),
    (700, 1000, 1000, 0.95, 1e-05, 0.731741),
    (1000, 1000, 1000, 0.95, 1e-05, 5.782283),
    (1000, 1000, 100000, 0.95, 1e-05, 3.488995),
    (4500, 5000, 10000, 0.99, 1e-05, 2.083557),
    (180, 200, 1000, 0.95, 1e-3, 1.134146),
    (50, 60, 100, 0.9, 1e-2, 0.429614),
    (990, 1000, 1000, 0.95, 1e-06, 4.062812),
    (1000, 1000, 1000, 0.95, 0.0, 5.809068),
    (95, 100, 1000, 0.95, 0.0, 2.172434),
]


@pytest.mark.parametrize(
    ("correct", "guesses", "canaries", "confidence", "delta", "expected"), JAX_PRIVACY_VALUES
)
def test_matches_jax_privacy_epsilon_one_run(
    correct: int, guesses: int, canaries: int, confidence: float, delta: float, expected: float
) -> None:
    """Values computed with ``jax_privacy.auditing._epsilon_one_run(0, m, r, v, 1 - conf, delta)``
    (commit 8967688c26d4); ours agree to its root-search tolerance."""
    ours = one_run_epsilon_lower_bound(
        correct, guesses, confidence=confidence, delta=delta, canaries=canaries
    )
    assert ours == pytest.approx(expected, abs=2e-6)


def _deterministic_normal(mu: float, n: int) -> np.ndarray:
    return norm.ppf(np.linspace(0.0, 1.0, n, endpoint=False) + 0.5 / n) + mu


@pytest.mark.parametrize(
    ("shift", "thresholds", "k_positive", "correct", "expected"),
    [
        (1.0, 386, 3376, 2807, 1.13346),
        (2.0, 374, 4666, 4499, 2.311945),
        (4.0, 140, 8233, 8223, 4.395568),
    ],
)
def test_jax_privacy_epsilon_one_run_close_examples(
    shift: float, thresholds: int, k_positive: int, correct: int, expected: float
) -> None:
    """jax_privacy's ``test_epsilon_one_run_close``: 10,000 in- and 10,000 out-canaries with
    evenly spaced normal quantiles, in-scores shifted by 1, 2 or 4, significance 0.05,
    delta = 1e-6, one-sided guesses, Bonferroni over its ROC-frontier thresholds, expects
    1.13346, 2.311945 and 4.395568 (rtol 1e-5). Running that code gave the frontier sizes and
    the winning top-k used here; our guess count and bound at ``1 - 0.05 / thresholds``
    reproduce its number, and so does :func:`best_one_run_bound` given a grid of that size that
    contains the winner (the other choices lose)."""
    n = 10_000
    scores = np.concatenate([_deterministic_normal(shift, n), _deterministic_normal(0.0, n)])
    included = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    assert guesses_from_scores(scores, included, k_positive=k_positive, k_negative=0) == (
        correct,
        k_positive,
    )
    eps = one_run_epsilon_lower_bound(
        correct, k_positive, confidence=1 - 0.05 / thresholds, delta=1e-6, canaries=2 * n
    )
    assert eps == pytest.approx(expected, rel=1e-5)
    losers = [(k, 0) for k in range(1, thresholds)]  # 1..thresholds-1 top guesses: all worse
    result = best_one_run_bound(scores, included, delta=1e-6, k_values=[(k_positive, 0), *losers])
    assert result["epsilon_lower_bound"] == pytest.approx(expected, rel=1e-5)
    assert (result["k_positive"], result["correct"]) == (k_positive, correct)


def test_bound_grows_with_correct_and_shrinks_with_confidence_and_delta() -> None:
    r = 500
    by_correct = [one_run_epsilon_lower_bound(v, r) for v in range(260, r + 1, 10)]
    assert all(a <= b for a, b in itertools.pairwise(by_correct))
    assert by_correct[-1] > by_correct[0]
    by_confidence = [
        one_run_epsilon_lower_bound(450, r, confidence=c) for c in (0.5, 0.8, 0.9, 0.95, 0.99)
    ]
    assert all(a > b for a, b in itertools.pairwise(by_confidence))
    for v in (300, 400, 450, 500):
        pure = one_run_epsilon_lower_bound(v, r)
        previous = pure
        for d in (1e-8, 1e-6, 1e-4, 1e-2):
            approx = one_run_epsilon_lower_bound(v, r, delta=d, canaries=1000)
            assert approx <= previous
            previous = approx
        assert one_run_epsilon_lower_bound(v, r, delta=1e-5, canaries=r) <= pure


def test_no_better_than_half_right_gives_zero() -> None:
    for r in (1, 2, 10, 101, 1000):
        for v in range(0, r // 2 + 1, max(1, r // 20)):
            assert one_run_epsilon_lower_bound(v, r) == 0.0
            assert one_run_epsilon_lower_bound(v, r, confidence=0.99) == 0.0
            assert one_run_epsilon_lower_bound(v, r, delta=1e-5, canaries=2 * r) == 0.0
    assert one_run_epsilon_lower_bound(0, 0) == 0.0


def test_guesses_from_scores_counts_top_and_bottom() -> None:
    scores = np.array([0.9, 0.1, 0.8, 0.3, 0.5, 0.2])
    included = np.array([True, False, False, False, True, True])
    # Top 2: 0.9 (in, right), 0.8 (out, wrong). Bottom 2: 0.1 (out, right), 0.2 (in, wrong).
    assert guesses_from_scores(scores, included, k_positive=2, k_negative=2) == (2, 4)
    assert guesses_from_scores(scores, included, k_positive=1, k_negative=0) == (1, 1)
    assert guesses_from_scores(scores, included.astype(int), k_positive=0, k_negative=1) == (1, 1)
    assert guesses_from_scores(scores, included, k_positive=0, k_negative=0) == (0, 0)
    # All tied: the two guessed sets stay disjoint, so every canary is guessed exactly once.
    tied = np.zeros(4)
    inc = np.array([True, True, False, False])
    correct, guesses = guesses_from_scores(tied, inc, k_positive=2, k_negative=2)
    assert guesses == 4 and correct in (0, 2, 4)


def _randomized_response_scores(
    rng: np.random.Generator, m: int, epsilon: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each canary included with probability 1/2; its score is its membership bit reported
    truthfully with probability e^eps/(1+e^eps) (randomized response, exactly eps-DP per canary),
    plus independent noise in [0, 0.5) to break ties (post-processing keeps eps)."""
    included = rng.random(m) < 0.5
    truthful = rng.random(m) < expit(epsilon)
    bit = np.where(truthful, included, ~included)
    return bit + 0.5 * rng.random(m), included


def test_randomized_response_eps2_bound_is_below_truth_in_95_percent_of_seeds() -> None:
    start = time.perf_counter()
    bounds = []
    for seed in range(100):
        scores, included = _randomized_response_scores(np.random.default_rng(seed), 5000, 2.0)
        bounds.append(best_one_run_bound(scores, included)["epsilon_lower_bound"])
    elapsed = time.perf_counter() - start
    bounds_array = np.array(bounds)
    assert np.mean(bounds_array <= 2.0) >= 0.95
    assert np.min(bounds_array) > 1.0  # eps = 2 leaks strongly: the audit sees most of it
    assert elapsed < 5.0


def test_strong_leak_falsifies_a_smaller_claim_and_delta_only_lowers_it() -> None:
    """Randomized response at eps = 5 audited against a claim of eps = 2: the 95 % lower bound
    exceeds 2, so "this run is 2-DP" is false at that confidence. With delta = 1e-5 the bound is
    lower but the claim still falls."""
    scores, included = _randomized_response_scores(np.random.default_rng(7), 5000, 5.0)
    pure = best_one_run_bound(scores, included)
    approx = best_one_run_bound(scores, included, delta=1e-5)
    assert 2.0 < pure["epsilon_lower_bound"] <= 5.0
    assert 2.0 < approx["epsilon_lower_bound"] <= pure["epsilon_lower_bound"]
    assert set(pure) == {
        "epsilon_lower_bound",
        "correct",
        "guesses",
        "k_positive",
        "k_negative",
        "confidence",
        "delta",
        "canaries",
    }
    assert pure["guesses"] == pure["k_positive"] + pure["k_negative"]
    assert (pure["confidence"], pure["delta"], pure["canaries"]) == (0.95, 0.0, 5000)


def test_no_leak_gives_zero_and_a_fixed_choice_pays_no_correction() -> None:
    rng = np.random.default_rng(3)
    included = rng.random(2000) < 0.5
    assert best_one_run_bound(rng.random(2000), included)["epsilon_lower_bound"] == 0.0
    scores, inc = _randomized_response_scores(np.random.default_rng(5), 2000, 3.0)
    single = best_one_run_bound(scores, inc, k_values=[(200, 200)])
    correct, guesses = guesses_from_scores(scores, inc, k_positive=200, k_negative=200)
    assert single["epsilon_lower_bound"] == one_run_epsilon_lower_bound(correct, guesses)
    # Bonferroni: the same choice among 10 costs confidence 1 - 0.05/10.
    grid = [(200, 200)] + [(k, 0) for k in range(1, 10)]
    corrected = best_one_run_bound(scores, inc, k_values=grid)
    assert corrected["epsilon_lower_bound"] == pytest.approx(
        one_run_epsilon_lower_bound(correct, guesses, confidence=0.995)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"correct": 11, "guesses": 10}, "cannot exceed guesses"),
        ({"correct": -1, "guesses": 10}, "correct must be a non-negative integer"),
        ({"correct": 1, "guesses": -10}, "guesses must be a non-negative integer"),
        ({"correct": 1.5, "guesses": 10}, "correct must be a non-negative integer"),
        ({"correct": 5, "guesses": 10, "confidence": 1.0}, "confidence must be in"),
        ({"correct": 5, "guesses": 10, "confidence": 0.0}, "confidence must be in"),
        ({"correct": 5, "guesses": 10, "delta": 1.0, "canaries": 10}, "delta must be in"),
        ({"correct": 5, "guesses": 10, "delta": -0.1, "canaries": 10}, "delta must be in"),
        ({"correct": 5, "guesses": 10, "delta": 1e-5}, "canaries"),
        ({"correct": 5, "guesses": 10, "canaries": 9}, "cannot be fewer than guesses"),
    ],
)
def test_bad_bound_inputs_raise_naming_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        one_run_epsilon_lower_bound(**kwargs)


def test_bad_score_inputs_raise_naming_the_problem() -> None:
    scores, included = np.arange(5.0), np.array([True, False, True, False, True])
    with pytest.raises(ValueError, match="one entry per score"):
        guesses_from_scores(scores, included[:4], k_positive=1, k_negative=1)
    with pytest.raises(ValueError, match="cannot exceed the 5 canaries"):
        guesses_from_scores(scores, included, k_positive=3, k_negative=3)
    with pytest.raises(ValueError, match="k_negative must be a non-negative integer"):
        guesses_from_scores(scores, included, k_positive=1, k_negative=-1)
    with pytest.raises(ValueError, match="included must be boolean"):
        guesses_from_scores(scores, np.array([0, 1, 2, 0, 1]), k_positive=1, k_negative=1)
    with pytest.raises(ValueError, match="finite"):
        guesses_from_scores(np.array([0, np.nan, 1, 2, 3]), included, k_positive=1, k_negative=0)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        best_one_run_bound(np.array([]), np.array([], bool))
    with pytest.raises(ValueError, match="k_values entry"):
        best_one_run_bound(scores, included, k_values=[(4, 2)])
    with pytest.raises(ValueError, match="at least one"):
        best_one_run_bound(scores, included, k_values=[])
    with pytest.raises(ValueError, match="confidence must be in"):
        best_one_run_bound(scores, included, confidence=1.5)
