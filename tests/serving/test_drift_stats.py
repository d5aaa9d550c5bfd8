"""Drift statistics against hand-computed and scipy reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ethos.serving import drift


def test_psi_matches_the_hand_computed_two_bin_example() -> None:
    # Fixed edges [0, 0.5, 1]. Reference: 5 of 10 below 0.5 -> shares (0.5, 0.5).
    # Current: 8 of 10 below 0.5 -> shares (0.8, 0.2).
    # PSI = (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5)
    #     = 0.3 * 0.470004 + (-0.3) * (-0.916291) = 0.141001 + 0.274887 = 0.415888
    reference = [0.1, 0.2, 0.3, 0.4, 0.45, 0.6, 0.7, 0.8, 0.9, 0.95]
    current = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.7, 0.9]
    psi = drift.population_stability_index(reference, current, edges=[0.0, 0.5, 1.0])
    assert psi == pytest.approx(0.415888, abs=1e-6)
    assert psi == pytest.approx(0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5))


def test_psi_floors_an_empty_bin_at_eps() -> None:
    # Current has nothing above 0.5: shares (1.0, 0.0) -> (1.0, 1e-4) after the floor.
    # PSI = (1 - 0.5) ln(1 / 0.5) + (1e-4 - 0.5) ln(1e-4 / 0.5)
    #     = 0.5 * 0.693147 + (-0.4999) * (-8.517193) = 0.346574 + 4.257745 = 4.604319
    psi = drift.population_stability_index([0.2, 0.8], [0.1, 0.2, 0.3], edges=[0, 0.5, 1])
    assert psi == pytest.approx(4.604319, abs=1e-5)
    assert math.isfinite(psi)


def test_psi_of_identical_samples_is_zero_and_grows_with_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert drift.population_stability_index(reference, reference) == pytest.approx(0.0, abs=1e-12)
    same_law = drift.population_stability_index(reference, rng.normal(size=5000))
    assert same_law < 0.02  # sampling alone: about (bins - 1) (1/n + 1/m) = 0.0036
    shifts = [0.25, 0.5, 1.0, 2.0]
    values = [
        drift.population_stability_index(reference, rng.normal(loc=s, size=5000)) for s in shifts
    ]
    assert values == sorted(values) and values[0] > same_law
    assert values[-1] > 0.2  # a shift of two standard deviations is "significant"


def test_quantile_bins_hold_equal_reference_shares_and_catch_values_beyond_the_range() -> None:
    reference = np.arange(100, dtype=float)
    edges = drift.quantile_edges(reference, 4)
    assert drift.bin_shares(reference, edges).tolist() == [0.25, 0.25, 0.25, 0.25]
    # values far outside the reference's range land in the end bins, not outside the histogram
    assert drift.bin_shares([-50.0, 500.0], edges).tolist() == [0.5, 0.0, 0.0, 0.5]
    # a discrete quantity with ties gives fewer, merged bins: nine 3s and one 5 have deciles
    # 3 (nine times, merged), 3.2 (interpolated) and 5, so two bins
    edges = drift.quantile_edges([3] * 9 + [5], 10)
    assert edges.tolist() == pytest.approx([3.0, 3.2, 5.0])
    assert drift.bin_shares([3] * 9 + [5], edges).tolist() == pytest.approx([0.9, 0.1])


def test_probability_edges_are_fixed_tenths() -> None:
    assert drift.probability_edges().tolist() == pytest.approx([i / 10 for i in range(11)])
    assert drift.bin_shares([0.0, 0.05, 0.95, 1.0], drift.probability_edges())[
        [0, -1]
    ].tolist() == [
        0.5,
        0.5,
    ]


def test_ks_matches_scipy_and_a_hand_computation() -> None:
    # Reference {1, 2, 3}, current {2.5, 3.5, 4.5}. The empirical CDFs differ most at x = 2
    # (F_ref = 2/3, F_cur = 0) and at x = 3 (F_ref = 1, F_cur = 1/3): D = 2/3.
    # Exact two-sided p-value for n = m = 3: P(D >= 2/3) = 1 - P(D < 2/3); of the C(6,3) = 20
    # equally likely orderings, 8 have D <= 1/3, so p = 12 / 20 = 0.6.
    statistic, p_value = drift.ks_statistic([1, 2, 3], [2.5, 3.5, 4.5])
    assert statistic == pytest.approx(2 / 3)
    assert p_value == pytest.approx(0.6)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(loc=0.3, size=200)
    expected = stats.ks_2samp(a, b)
    assert drift.ks_statistic(a, b) == pytest.approx((expected.statistic, expected.pvalue))


def test_oov_rate_counts_words_without_a_whole_vocabulary_entry() -> None:
    vocab = {"the", "patient", "has", "a", "fever", "##itis"}
    # words: the, patient, has, appendicitis, fever  ->  1 of 5 is not an entry
    assert drift.oov_rate("The patient has APPENDICITIS, fever!", vocab) == pytest.approx(0.2)
    assert drift.words("“Quoted” -- ¿qué? a.b") == ["quoted", "qué", "a.b"]
    assert drift.oov_rate("", vocab) == 0.0
    assert drift.oov_rate("... !!!", vocab) == 0.0
    assert drift.oov_rate("itis", vocab) == 1.0  # a ## piece is not a whole word


def test_embedding_shift_is_in_units_of_the_reference_spread() -> None:
    mean, std = np.zeros(4), np.full(4, 0.5)  # ||std|| = 1
    current = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert drift.embedding_mean_shift(mean, std, current) == pytest.approx(1.0)
    # mean (0.6, 0.8, 0, 0): distance 1.0; spread ||(1, 1, 1, 1)|| = 2 -> 0.5
    current = np.array([[0.6, 0.8, 0.0, 0.0]])
    assert drift.embedding_mean_shift(mean, np.ones(4), current) == pytest.approx(0.5)


def test_embedding_shift_of_in_distribution_samples_is_about_one_over_root_n() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(5000, 32))
    window = rng.normal(size=(200, 32))
    shift = drift.embedding_mean_shift(reference.mean(0), reference.std(0), window)
    assert shift == pytest.approx(1 / math.sqrt(200), rel=0.3)


def test_rate_gap() -> None:
    assert drift.rate_gap([0.2, 0.5, 0.35]) == pytest.approx(0.3)
    assert drift.rate_gap([0.4]) == 0.0
