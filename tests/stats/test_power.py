"""Sample sizes for a difference of two proportions (ethos.stats.power) vs statsmodels and pwr."""

from __future__ import annotations

import itertools
import math

import pytest
from scipy.stats import norm
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from ethos.stats.power import (
    NEVER,
    additional_examples,
    cohens_h,
    required_effective_n,
    required_n_for_margin,
    required_n_given_reference,
    required_n_per_group,
)

RATE_PAIRS = [(0.05, 0.2), (0.2, 0.05), (0.3, 0.5), (0.5, 0.75), (0.65, 0.85), (0.9, 0.97)]
ALPHAS = [0.01, 0.05, 0.1]
POWERS = [0.7, 0.8, 0.9]
RATIOS = [0.5, 1.0, 3.0]


def statsmodels_n(
    p1: float, p2: float, *, alpha: float, power: float, ratio: float, alt: str
) -> float:
    effect = proportion_effectsize(p1, p2)
    if alt == "one-sided":  # statsmodels' "larger" with the effect oriented the observed way
        effect, alt = abs(effect), "larger"
    return float(
        NormalIndPower().solve_power(
            effect_size=effect, alpha=alpha, power=power, ratio=ratio, alternative=alt
        )
    )


def test_cohens_h_is_statsmodels_proportion_effectsize() -> None:
    for p1, p2 in RATE_PAIRS:
        assert cohens_h(p1, p2) == pytest.approx(proportion_effectsize(p1, p2), rel=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "one-sided"])
def test_required_n_matches_statsmodels_normal_ind_power_to_one_percent(alternative: str) -> None:
    for (p1, p2), alpha, power, ratio in itertools.product(RATE_PAIRS, ALPHAS, POWERS, RATIOS):
        ours = required_n_per_group(
            p1, p2, alpha=alpha, power=power, ratio=ratio, alternative=alternative
        )
        theirs = statsmodels_n(p1, p2, alpha=alpha, power=power, ratio=ratio, alt=alternative)
        assert ours == pytest.approx(theirs, rel=0.01), (p1, p2, alpha, power, ratio)


def test_pwr_2p_test_example_p050_vs_p075_power090_needs_76_65_per_group() -> None:
    """R's ``pwr::pwr.2p.test(h = ES.h(0.50, 0.75), power = .90, sig.level = .05)`` gives
    n = 76.65 per group (the worked comparison with ``power.prop.test`` on Cross Validated,
    stats.stackexchange.com/q/83700); statsmodels' NormalIndPower agrees."""
    n = required_n_per_group(0.50, 0.75, alpha=0.05, power=0.90)
    assert n == pytest.approx(76.65, abs=0.005)
    assert n == pytest.approx(
        statsmodels_n(0.5, 0.75, alpha=0.05, power=0.9, ratio=1, alt="two-sided")
    )
    assert math.ceil(n) == 77


def test_closed_form_two_sided_is_the_textbook_formula_at_usual_alpha_and_power() -> None:
    """n = 2·((z_{0.975} + z_{0.8}) / h)² (Cohen 1988, ch. 6); the far tail is invisible here."""
    h = cohens_h(0.65, 0.85)
    textbook = 2 * ((norm.ppf(0.975) + norm.ppf(0.8)) / h) ** 2
    assert required_n_per_group(0.65, 0.85) == pytest.approx(textbook, rel=1e-5)


def test_zero_effect_needs_never() -> None:
    assert required_n_per_group(0.3, 0.3) == NEVER
    assert required_n_given_reference(0.3, 0.3, n2=10_000) == NEVER
    assert additional_examples(NEVER, 500) == NEVER


def test_sign_of_the_difference_does_not_matter() -> None:
    assert required_n_per_group(0.2, 0.4) == pytest.approx(required_n_per_group(0.4, 0.2))
    assert required_n_per_group(0.2, 0.4, alternative="one-sided") == pytest.approx(
        required_n_per_group(0.4, 0.2, alternative="one-sided")
    )


def test_given_reference_inverts_the_ratio_form() -> None:
    n1 = required_n_per_group(0.1, 0.25, ratio=4.0)
    assert required_n_given_reference(0.1, 0.25, n2=4.0 * n1) == pytest.approx(n1, rel=1e-9)


def test_given_reference_too_small_can_never_be_fixed_by_one_group() -> None:
    n_eff = required_effective_n(cohens_h(0.1, 0.25))
    assert required_n_given_reference(0.1, 0.25, n2=n_eff * 0.99) == NEVER
    assert math.isfinite(required_n_given_reference(0.1, 0.25, n2=n_eff * 1.01))


def test_margin_variant_makes_the_wald_half_width_equal_the_margin() -> None:
    p1, p2, margin = 0.3, 0.2, 0.05
    n1 = required_n_for_margin(p1, p2, margin, ratio=2.0)
    half = norm.ppf(0.975) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / (2.0 * n1))
    assert half == pytest.approx(margin, rel=1e-9)
    n1_fixed = required_n_for_margin(p1, p2, margin, n2=2000)
    half_fixed = norm.ppf(0.975) * math.sqrt(p1 * (1 - p1) / n1_fixed + p2 * (1 - p2) / 2000)
    assert half_fixed == pytest.approx(margin, rel=1e-9)


def test_margin_variant_sentinels() -> None:
    assert required_n_for_margin(0.3, 0.2, 0.0) == NEVER  # observed value sits on the limit
    assert required_n_for_margin(0.3, 0.2, 0.01, n2=10) == NEVER  # reference alone too noisy
    assert required_n_for_margin(0.0, 1.0, 0.1) == 1.0  # Wald variance 0: degenerate, documented


def test_additional_examples_is_zero_when_enough() -> None:
    assert additional_examples(76.65, 50) == 27
    assert additional_examples(76.65, 77) == 0
    assert additional_examples(76.65, 1000) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p1": -0.1, "p2": 0.5}, "p1"),
        ({"p1": 0.5, "p2": 1.5}, "p2"),
        ({"p1": math.nan, "p2": 0.5}, "p1"),
        ({"p1": 0.2, "p2": 0.5, "alpha": 0.0}, "alpha"),
        ({"p1": 0.2, "p2": 0.5, "power": 1.0}, "power"),
        ({"p1": 0.2, "p2": 0.5, "alpha": 0.5, "power": 0.4}, "must exceed alpha"),
        ({"p1": 0.2, "p2": 0.5, "ratio": 0.0}, "ratio"),
        ({"p1": 0.2, "p2": 0.5, "alternative": "larger"}, "alternative"),
    ],
)
def test_bad_inputs_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        required_n_per_group(**kwargs)  # type: ignore[arg-type]


def test_bad_inputs_of_the_other_functions() -> None:
    with pytest.raises(ValueError, match="margin"):
        required_n_for_margin(0.3, 0.2, -0.1)
    with pytest.raises(ValueError, match="confidence"):
        required_n_for_margin(0.3, 0.2, 0.1, confidence=1.0)
    with pytest.raises(ValueError, match="n2"):
        required_n_given_reference(0.3, 0.2, n2=0)
    with pytest.raises(ValueError, match="current"):
        additional_examples(10.0, -1)
    with pytest.raises(ValueError, match="required"):
        additional_examples(math.nan, 1)
