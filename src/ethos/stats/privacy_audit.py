"""A lower bound on a training run's epsilon from one run with canaries (one-run privacy audit).

A differential-privacy claim "this training run is (eps, delta)-DP" is an *upper* bound that comes
from a proof. An audit gives an empirical *lower* bound: an epsilon that the run provably exceeds,
with high confidence, judging from what an attacker could tell about the training data. If the
audited lower bound is above the claimed epsilon, the claim is false at that confidence (a bug in
the implementation or in the analysis). A lower bound below the claim proves nothing either way.

The procedure is that of Steinke, Nasr & Jagielski, "Privacy Auditing with One (1) Training Run"
(NeurIPS 2023, arXiv:2305.08846). The auditor

1. draws ``m`` canaries and includes each one in the training data *independently with probability
   1/2* (a fair coin per canary, kept secret from the scoring);
2. trains once, then gives every canary a membership score (higher: "looks included");
3. guesses "included" for the ``k+`` highest scores and "excluded" for the ``k-`` lowest,
   abstaining on the rest, and counts how many of the ``r = k+ + k-`` guesses are right (``v``).

If the run is (eps, 0)-DP, the number of correct guesses ``v`` is stochastically dominated by
``W ~ Binomial(r, p(eps))`` with ``p(eps) = e^eps / (1 + e^eps)`` (their Theorem 3.1): each guess is
at most as good as randomized response with that epsilon. Observing ``v`` rejects every epsilon with
``P[W >= v] <= beta`` (``beta = 1 - confidence``), and the lower bound is the largest rejected
epsilon (0 if even eps = 0, a fair coin, is not rejected):

    eps_lb = sup{eps >= 0 : P[Binomial(r, p(eps)) >= v] <= beta}.

For delta = 0 this has a closed form. ``P[Binomial(r, q) >= v]`` is the regularized incomplete
beta function ``I_q(v, r - v + 1)``, so the boundary ``q*`` is the ``beta``-quantile of
``Beta(v, r - v + 1)`` (the one-sided Clopper-Pearson lower limit of the guessing accuracy), and
``eps_lb = max(0, log(q* / (1 - q*)))``.

For delta > 0, Theorem 3.1 adds a term that grows with the *total* number of canaries ``m`` (not
only with the ``r`` that were guessed), so :func:`one_run_epsilon_lower_bound` then needs
``canaries``: an (eps, delta) claim is rejected when the p-value

    P[W >= v] + 2·m·delta · max_{1 <= i <= v} P[v - i <= W < v] / i,    W ~ Binomial(r, p(eps)),

is at most ``beta`` (this is the quantity the paper's algorithm for the bound evaluates; the
maximum over ``i > v`` adds nothing, as the numerator stops growing there). This p-value need not
be monotone in epsilon, but a run that is (eps0, delta)-DP is (eps, delta)-DP for every
``eps >= eps0``, so the supremum of the rejected epsilons is still a valid lower bound. It is
found by scanning ``[0, eps_lb(delta = 0)]`` (the delta term only adds, so nothing above the
delta = 0 bound is rejected) and bisecting the last crossing; a rejected stretch narrower than
the scan step could be missed, which only makes the bound smaller.

**Choosing k.** The bound for one ``(k+, k-)`` is valid when that choice is fixed before the
outcome is seen. :func:`best_one_run_bound` tries a grid of choices and reports the best, which is
only valid with a correction for having looked: each choice is tested at ``beta / len(grid)``
(Bonferroni), so the maximum is a valid lower bound at the stated confidence whatever grid point
wins. A fixed, single choice (``k_values=[(k_plus, k_minus)]``) pays no correction.

**Assumptions** (the bound is only as good as these): each canary is included independently with
probability exactly 1/2; the scores and the choice of guesses depend on the trained model (and
public information) only, never on which canaries were included; ``m`` counts every canary that
was randomized, including those the auditor abstained on. Bad inputs raise :class:`ValueError`
naming the argument.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import beta as beta_law
from scipy.stats import binom

_SCAN_POINTS = 129
"""Grid points over ``[0, eps_lb(delta=0)]`` searched for the last epsilon rejected with delta."""

_TOLERANCE = 1e-10
"""Relative width at which the bisection around the last crossing stops (a lower end is kept)."""

_DEFAULT_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
"""Default numbers of guesses, as fractions of the canaries, for :func:`best_one_run_bound`."""


def one_run_epsilon_lower_bound(
    correct: int,
    guesses: int,
    *,
    confidence: float = 0.95,
    delta: float = 0.0,
    canaries: int | None = None,
) -> float:
    """The largest epsilon that ``correct`` right out of ``guesses`` rejects at ``confidence``.

    ``sup{eps >= 0 : P[Binomial(guesses, e^eps/(1+e^eps)) >= correct] <= 1 - confidence}`` for
    ``delta = 0`` (closed form through the Beta quantile), and with the delta term of Steinke,
    Nasr & Jagielski (2023, Theorem 3.1) added to that tail for ``delta > 0`` (see the module
    docstring). 0.0 when the guesses are no better than a fair coin allows at this confidence (for
    instance whenever ``correct <= guesses / 2`` and ``confidence >= 1/2``, and always when
    ``correct == 0``).

    ``canaries`` is ``m``, the number of canaries randomized into or out of training (at least
    ``guesses``). The delta term is ``2·m·delta·(...)``, so it is required when ``delta > 0``;
    with ``delta = 0`` it is only checked.
    """
    v = _check_count("correct", correct)
    r = _check_count("guesses", guesses)
    if v > r:
        raise ValueError(f"correct ({v}) cannot exceed guesses ({r})")
    _check_open_unit("confidence", confidence)
    if not (isinstance(delta, numbers.Real) and 0.0 <= float(delta) < 1.0):
        raise ValueError(f"delta must be in [0, 1), got {delta!r}")
    m: int | None = None
    if canaries is not None:
        m = _check_count("canaries", canaries)
        if m < r:
            raise ValueError(f"canaries ({m}) cannot be fewer than guesses ({r})")
    if delta > 0 and m is None:
        raise ValueError(
            "canaries (the number m of randomized canaries) is required when delta > 0: "
            "the delta term of the bound is 2·m·delta·(...)"
        )
    significance = 1.0 - float(confidence)
    eps_pure = _pure_dp_bound(v, r, significance)
    if delta == 0 or eps_pure == 0.0:
        return eps_pure
    assert m is not None  # checked above
    return _approximate_dp_bound(v, r, m, float(delta), significance, eps_pure)


def guesses_from_scores(
    scores: Any, included: Any, *, k_positive: int, k_negative: int
) -> tuple[int, int]:
    """``(correct, guesses)`` when the ``k_positive`` highest scores are guessed included and
    the ``k_negative`` lowest excluded (abstaining on the rest).

    ``scores`` is one finite number per canary (higher: more likely included); ``included`` the
    boolean truth (0/1 integers are accepted). Ties are broken by position, which is harmless
    when positions carry no information about inclusion. The two guessed sets never overlap:
    ``k_positive + k_negative`` may not exceed the number of canaries.
    """
    s, inc = _check_scores(scores, included)
    k_pos = _check_count("k_positive", k_positive)
    k_neg = _check_count("k_negative", k_negative)
    m = s.size
    if k_pos + k_neg > m:
        raise ValueError(
            f"k_positive + k_negative ({k_pos} + {k_neg}) cannot exceed the {m} canaries"
        )
    order = np.argsort(s, kind="stable")
    lowest = order[:k_neg]
    highest = order[m - k_pos :]
    correct = int(np.count_nonzero(inc[highest])) + int(np.count_nonzero(~inc[lowest]))
    return correct, k_pos + k_neg


def best_one_run_bound(
    scores: Any,
    included: Any,
    *,
    confidence: float = 0.95,
    delta: float = 0.0,
    k_values: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """The best one-run lower bound over a grid of ``(k_positive, k_negative)`` guess counts.

    Each choice on the grid is evaluated at confidence ``1 - (1 - confidence) / len(grid)``
    (Bonferroni), so the reported maximum holds at ``confidence`` although the winner was picked
    after looking. The default grid (fixed before seeing any data, as it must be) takes
    ``r = max(1, round(f·m))`` guesses for ``f`` in 1 %, 2 %, 5 %, 10 %, 20 %, 50 % and 100 % of
    the ``m`` canaries, each both one-sided (``(r, 0)``: only "included" guesses) and two-sided
    (``(r - r // 2, r // 2)``), duplicates removed. Pass ``k_values=[(k_plus, k_minus)]`` to audit
    a single choice fixed in advance, without correction.

    Returns ``{"epsilon_lower_bound", "correct", "guesses", "k_positive", "k_negative",
    "confidence", "delta", "canaries"}`` for the winning choice (the first on the grid when none
    gives a positive bound); ``confidence`` is the overall level asked for.
    """
    s, inc = _check_scores(scores, included)
    m = s.size
    _check_open_unit("confidence", confidence)
    grid = _default_grid(m) if k_values is None else _check_grid(k_values, m)
    per_choice_confidence = 1.0 - (1.0 - float(confidence)) / len(grid)

    best: dict[str, Any] | None = None
    for k_pos, k_neg in grid:
        correct, guesses = guesses_from_scores(s, inc, k_positive=k_pos, k_negative=k_neg)
        if best is not None and delta > 0:
            # The delta term only lowers the bound: skip the slow search when even the delta = 0
            # bound of this choice cannot beat the best so far.
            ceiling = one_run_epsilon_lower_bound(
                correct, guesses, confidence=per_choice_confidence, canaries=m
            )
            if ceiling <= best["epsilon_lower_bound"]:
                continue
        eps = one_run_epsilon_lower_bound(
            correct, guesses, confidence=per_choice_confidence, delta=delta, canaries=m
        )
        if best is None or eps > best["epsilon_lower_bound"]:
            best = {
                "epsilon_lower_bound": eps,
                "correct": correct,
                "guesses": guesses,
                "k_positive": k_pos,
                "k_negative": k_neg,
            }
    assert best is not None  # the grid is never empty
    best.update({"confidence": float(confidence), "delta": float(delta), "canaries": m})
    return best


# --- the two bounds ------------------------------------------------------------------------------


def _pure_dp_bound(v: int, r: int, significance: float) -> float:
    """delta = 0: logit of the ``significance``-quantile of Beta(v, r - v + 1), floored at 0."""
    if v == 0:  # P[W >= 0] = 1: nothing is rejected
        return 0.0
    q = float(beta_law.ppf(significance, v, r - v + 1))
    one_minus_q = float(beta_law.isf(significance, r - v + 1, v))  # 1 - q without cancellation
    if q <= 0.0 or one_minus_q <= 0.0:
        return 0.0 if q <= 0.0 else math.inf
    return max(0.0, math.log(q) - math.log(one_minus_q))


def _p_value(eps: float, v: int, r: int, m: int, delta: float) -> float:
    """Theorem 3.1's bound on ``P[correct >= v]`` for an (eps, delta)-DP run (capped at 1)."""
    q = 1.0 / (1.0 + math.exp(-eps))
    tail = float(binom.sf(v - 1, r, q))  # P[W >= v]
    if tail >= 1.0 or delta == 0.0:
        return min(1.0, tail)
    # P[v - i <= W < v] for i = 1..v: cumulative mass going down from v - 1.
    below = binom.pmf(np.arange(v - 1, -1, -1), r, q)
    worst_ratio = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))
    return min(1.0, tail + 2.0 * m * delta * worst_ratio)


def _approximate_dp_bound(
    v: int, r: int, m: int, delta: float, significance: float, eps_pure: float
) -> float:
    """delta > 0: the largest rejected epsilon in ``[0, eps_pure]`` (scan, then bisection)."""

    # Wherever P[W >= v] <= beta, the i = v term alone gives P[W < v] / v >= (1 - beta) / v,
    # so no epsilon is rejected when 2·m·delta·(1 - beta) / v already exceeds beta.
    if 2.0 * m * delta * (1.0 - significance) / v > significance:
        return 0.0

    def rejected(eps: float) -> bool:
        return _p_value(eps, v, r, m, delta) <= significance

    grid = np.linspace(0.0, eps_pure, _SCAN_POINTS)
    # Walk down from the top: the first rejected grid point is the largest one (usually one or
    # two steps below eps_pure, as the delta term is small where it matters).
    last = next((i for i in range(len(grid) - 1, -1, -1) if rejected(float(grid[i]))), None)
    if last is None:
        return 0.0
    if last == len(grid) - 1:
        return eps_pure
    lo, hi = float(grid[last]), float(grid[last + 1])
    while hi - lo > _TOLERANCE * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        if rejected(mid):
            lo = mid
        else:
            hi = mid
    return lo


# --- validation ----------------------------------------------------------------------------------


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_open_unit(name: str, value: Any) -> None:
    if not (isinstance(value, numbers.Real) and 0.0 < float(value) < 1.0):
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")


def _check_scores(scores: Any, included: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=float)
    inc = np.asarray(included)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D array, got shape {s.shape}")
    if inc.shape != s.shape:
        raise ValueError(f"included must have one entry per score: {inc.shape} vs scores {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (no NaN or infinity)")
    if inc.dtype != bool:
        if not (np.issubdtype(inc.dtype, np.integer) and np.all((inc == 0) | (inc == 1))):
            raise ValueError("included must be boolean (or 0/1 integers)")
        inc = inc.astype(bool)
    return s, inc


def _check_grid(k_values: Sequence[tuple[int, int]], m: int) -> list[tuple[int, int]]:
    grid: list[tuple[int, int]] = []
    for pair in k_values:
        if len(pair) != 2:
            raise ValueError(f"k_values entries must be (k_positive, k_negative), got {pair!r}")
        k_pos = _check_count("k_positive", pair[0])
        k_neg = _check_count("k_negative", pair[1])
        if k_pos + k_neg > m:
            raise ValueError(
                f"k_values entry {pair!r}: k_positive + k_negative cannot exceed the {m} canaries"
            )
        if (k_pos, k_neg) not in grid:
            grid.append((k_pos, k_neg))
    if not grid:
        raise ValueError("k_values must hold at least one (k_positive, k_negative) pair")
    return grid


def _default_grid(m: int) -> list[tuple[int, int]]:
    grid: list[tuple[int, int]] = []
    for fraction in _DEFAULT_FRACTIONS:
        r = max(1, round(fraction * m))
        for pair in ((r, 0), (r - r // 2, r // 2)):
            if pair not in grid:
                grid.append(pair)
    return grid
