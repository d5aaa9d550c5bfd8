"""How many more labelled examples would settle a question about two proportions?

The evidence-aware gate (issue 17) needs more than "the interval is too wide": it should say how
many labelled examples of a group would let a reviewer tell PASS from FAIL at the policy's limit.
These pure functions answer that for a difference of two proportions (a group's FPR against
another group's, a selection rate against the rest, ...), at the rates observed so far.

Two questions, two formulas:

* **Power** (:func:`required_n_per_group`, :func:`required_n_given_reference`): how many rows per
  group make a test at significance ``alpha`` detect the observed difference with probability
  ``power``? On the arcsine scale the variance of a proportion no longer depends on the
  proportion, so the difference is measured with Cohen's effect size
  ``h = 2·asin(√p1) - 2·asin(√p2)`` (Cohen 1988, *Statistical Power Analysis for the Behavioral
  Sciences*, 2nd ed., ch. 6), whose estimate has standard error ``√(1/n1 + 1/n2)``. The normal
  approximation then asks for an *effective* size ``n_eff = 1/(1/n1 + 1/n2)`` of at least
  ``((z_{1-alpha/2} + z_{power}) / h)²`` (``z_{1-alpha}`` one-sided). With ``n2 = ratio·n1`` that is
  ``n1 = n_eff·(1 + 1/ratio)``, the value statsmodels' ``NormalIndPower().solve_power(
  effect_size=proportion_effectsize(p1, p2), ...)`` and R's ``pwr.2p.test`` return. Like them, a
  two-sided test also counts rejections in the far tail as power; that is solved for exactly,
  though at the usual alpha and power it changes n by far less than 1 %.
* **Precision** (:func:`required_n_for_margin`): how many rows make the 95 % interval of the
  difference ``p1 - p2`` narrower than ``margin``, the distance between the observed value and
  the policy's limit, so that the interval falls on one side of the limit? The Wald half-width
  ``z_{1-alpha/2}·√(p1(1-p1)/n1 + p2(1-p2)/n2)`` is solved for n1 (Fleiss, Levin & Paik 2003,
  *Statistical Methods for Rates and Proportions*, 3rd ed.).

Each comes in two shapes, because a gate asks two kinds of question: grow both groups together
(``ratio``: ``n2 = ratio·n1``), or label more of one small group while a large reference group
(the rest of the rows) stays as it is (``n2`` fixed; ``..._given_reference``). With the reference
fixed, adding rows of group 1 can never do better than ``n_eff = n2``, so some targets cannot be
reached that way.

**Sentinel.** Where no finite number of rows suffices (equal rates, a zero margin, a target the
fixed reference group cannot support) the functions return :data:`NEVER` (``math.inf``), so a
caller can write ``if needed == NEVER`` and a report can print "no number of examples".
:func:`additional_examples` passes it through. Bad inputs (a rate outside [0, 1], alpha or power
outside (0, 1), power not above alpha, a negative margin or size) raise :class:`ValueError`
naming the argument.
"""

from __future__ import annotations

import math
from typing import Literal

from scipy.optimize import brentq
from scipy.stats import norm

Alternative = Literal["two-sided", "one-sided"]

NEVER = math.inf
"""Returned when no finite number of examples reaches the target (e.g. ``p1 == p2``)."""


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's effect size for two proportions: ``h = 2·asin(√p1) - 2·asin(√p2)`` (Cohen 1988).

    Equal to statsmodels' ``proportion_effectsize(p1, p2)`` and R's ``pwr::ES.h``.
    """
    _check_rate("p1", p1)
    _check_rate("p2", p2)
    return 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2))


def required_effective_n(
    h: float, *, alpha: float = 0.05, power: float = 0.8, alternative: Alternative = "two-sided"
) -> float:
    """The effective size ``1/(1/n1 + 1/n2)`` a z-test of effect ``h`` needs: ``((z_a + z_b)/h)²``.

    ``z_a`` is ``z_{1-alpha/2}`` two-sided and ``z_{1-alpha}`` one-sided (in the direction of the
    observed difference, so the sign of ``h`` does not matter); ``z_b = z_{power}``. Two-sided,
    the far tail ``Φ(-|h|√n_eff - z_a)`` also counts as power (as in statsmodels and ``pwr``),
    so the closed form is refined by a one-dimensional root search; the change is far below 1 %
    at the usual alpha and power. :data:`NEVER` when ``h == 0``.
    """
    _check_open_unit("alpha", alpha)
    _check_open_unit("power", power)
    if not math.isfinite(h):
        raise ValueError(f"effect size h must be finite, got {h!r}")
    if power <= alpha:
        raise ValueError(
            f"power={power!r} must exceed alpha={alpha!r}: a test rejects with probability alpha "
            "even without data, so no sample size is needed for that"
        )
    if h == 0.0:
        return NEVER
    z_a = _z_alpha(alpha, alternative)
    shift = z_a + float(norm.ppf(power))  # |h|·√n_eff ignoring the far tail
    if alternative == "two-sided":
        shift = _two_sided_shift(z_a, power, upper=shift)
    return (shift / h) ** 2


def _two_sided_shift(z_a: float, power: float, *, upper: float) -> float:
    """The s with ``Φ(s - z_a) + Φ(-s - z_a) = power``; it lies in ``[0, upper]``.

    At ``s = 0`` the left side is alpha (< power); at ``upper`` it is at least power.
    """

    def excess(s: float) -> float:
        return float(norm.cdf(s - z_a) + norm.cdf(-s - z_a)) - power

    if excess(upper) <= 0.0:
        return upper
    return float(brentq(excess, 0.0, upper, xtol=1e-12))


def required_n_per_group(
    p1: float,
    p2: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
) -> float:
    """Rows of group 1 (group 2 gets ``ratio`` times as many) to detect ``p1 ≠ p2``.

    ``n1 = ((z_a + z_b)/h)² · (1 + 1/ratio)`` with ``h = cohens_h(p1, p2)`` (Cohen 1988, ch. 6):
    the ``nobs1`` of statsmodels' ``NormalIndPower().solve_power`` with
    ``proportion_effectsize``. Unrounded (take ``math.ceil`` for a count); :data:`NEVER` when
    ``p1 == p2``.
    """
    _check_positive("ratio", ratio)
    n_eff = required_effective_n(
        cohens_h(p1, p2), alpha=alpha, power=power, alternative=alternative
    )
    return n_eff * (1.0 + 1.0 / ratio)


def required_n_given_reference(
    p1: float,
    p2: float,
    *,
    n2: float,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
) -> float:
    """Rows of group 1 needed to detect ``p1 ≠ p2`` when group 2 keeps its ``n2`` rows.

    Solves ``1/n1 + 1/n2 = 1/n_eff`` for n1, i.e. ``n1 = 1/(1/n_eff - 1/n2)``, with ``n_eff`` from
    :func:`required_effective_n`. :data:`NEVER` when ``p1 == p2`` or when ``n2 <= n_eff`` (even
    infinitely many rows of group 1 leave the reference group's own noise too large).
    """
    _check_positive("n2", n2)
    n_eff = required_effective_n(
        cohens_h(p1, p2), alpha=alpha, power=power, alternative=alternative
    )
    return _solve_for_n1(1.0 / n_eff, 1.0, 1.0 / n2)


def required_n_for_margin(
    p1: float,
    p2: float,
    margin: float,
    *,
    confidence: float = 0.95,
    ratio: float = 1.0,
    n2: float | None = None,
    power: float = 0.5,
) -> float:
    """Rows of group 1 for the interval of ``p1 - p2`` to have half-width below ``margin``.

    ``power`` above 0.5 asks for more: that the interval clear the limit with that probability
    if the true difference is the observed one (the half-width plus ``z_{power}`` standard
    errors must fit in ``margin``, the sample size of a test of the limit at
    ``alpha = 1 - confidence`` with that power). At the default 0.5 it is the half-width alone.

    The Wald interval's half-width is ``z·√(p1(1-p1)/n1 + p2(1-p2)/n2)`` with
    ``z = z_{(1+confidence)/2}`` (Fleiss, Levin & Paik 2003). ``margin`` is the distance from the
    observed difference to the policy's limit: once the half-width is smaller, the interval lies
    on one side of the limit and the gate can decide. Solved for n1 with ``n2 = ratio·n1``, or,
    when ``n2`` is given, with group 2 fixed at ``n2`` rows (``ratio`` is then ignored).

    Returns :data:`NEVER` when ``margin == 0`` (the observed value sits on the limit) or when the
    fixed group 2 alone already makes the interval too wide. When both rates are 0 or 1 the Wald
    variance is 0 and one row "suffices"; that degenerate answer (1.0) is returned as such.
    """
    _check_rate("p1", p1)
    _check_rate("p2", p2)
    _check_open_unit("confidence", confidence)
    if not math.isfinite(margin) or margin < 0.0:
        raise ValueError(f"margin must be a finite distance >= 0, got {margin!r}")
    if margin == 0.0:
        return NEVER
    _check_open_unit("power", power)
    if power < 0.5:
        raise ValueError(f"power must be at least 0.5 for a margin, got {power!r}")
    z = float(norm.ppf(0.5 + confidence / 2.0)) + float(norm.ppf(power))
    budget = (margin / z) ** 2  # the variance the interval may have
    var1, var2 = p1 * (1.0 - p1), p2 * (1.0 - p2)
    if n2 is not None:
        _check_positive("n2", n2)
        n1 = _solve_for_n1(budget, var1, var2 / n2)
    else:
        _check_positive("ratio", ratio)
        n1 = (var1 + var2 / ratio) / budget
    return max(n1, 1.0)


def additional_examples(required: float, current: int) -> float:
    """How many more rows to label: ``max(0, ceil(required) - current)``.

    ``0`` when ``current`` already suffices; :data:`NEVER` passed through when ``required`` is.
    ``required`` is the output of one of the ``required_n_*`` functions for the same group.
    """
    if current < 0:
        raise ValueError(f"current must be a count >= 0, got {current!r}")
    if math.isnan(required) or required < 0.0:
        raise ValueError(f"required must be >= 0 (or NEVER), got {required!r}")
    if math.isinf(required):
        return NEVER
    return max(0, math.ceil(required) - current)


def _solve_for_n1(budget: float, unit_var1: float, var2: float) -> float:
    """n1 with ``unit_var1/n1 + var2 <= budget``; :data:`NEVER` if ``var2`` alone fills it."""
    slack = budget - var2
    if slack <= 0.0:
        return NEVER
    return unit_var1 / slack


def _z_alpha(alpha: float, alternative: Alternative) -> float:
    if alternative == "two-sided":
        return float(norm.ppf(1.0 - alpha / 2.0))
    if alternative == "one-sided":
        return float(norm.ppf(1.0 - alpha))
    raise ValueError(f"alternative must be 'two-sided' or 'one-sided', got {alternative!r}")


def _check_rate(name: str, value: float) -> None:
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be a proportion in [0, 1], got {value!r}")


def _check_open_unit(name: str, value: float) -> None:
    if not (0.0 < value < 1.0):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")


def _check_positive(name: str, value: float) -> None:
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
