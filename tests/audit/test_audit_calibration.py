"""Calibration: a reference value, independent recomputation, sklearn agreement, figures."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve

from ethos.audit import (
    AuditWarning,
    brier_score,
    calibration_section,
    expected_calibration_error,
    reliability_diagram,
    reliability_table,
    to_jsonable,
)


def test_ece_reference_two_bins() -> None:
    # each bin is off by 0.25: mean P = .25 with no positives, mean P = .75 with all positives
    ece = expected_calibration_error([0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75], n_bins=2)
    assert ece == pytest.approx(0.25)


def _naive_ece(conf: np.ndarray, hit: np.ndarray, edges: list[tuple[float, float]]) -> float:
    total = 0.0
    for i, (low, high) in enumerate(edges):
        # bins are (low, high], the first one [0, high]
        inside = [j for j, c in enumerate(conf) if low < c <= high or (i == 0 and c == low)]
        if inside:
            total += len(inside) * abs(np.mean(hit[inside]) - np.mean(conf[inside]))
    return total / len(conf)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_ece_and_brier_match_a_straightforward_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 700
    p = rng.random(n)
    y = (rng.random(n) < p**1.5).astype(int)
    edges = [(b / 15, (b + 1) / 15) for b in range(15)]
    expected = _naive_ece(p, y.astype(float), edges)
    assert expected_calibration_error(y, p) == pytest.approx(expected, abs=1e-12)
    assert brier_score(y, p) == pytest.approx(np.mean((p - y) ** 2))
    # equal mass: sort, cut into 10 runs of 70
    order = np.argsort(p)
    ece_mass = sum(len(c) * abs(y[c].mean() - p[c].mean()) for c in np.array_split(order, 10)) / n
    assert expected_calibration_error(y, p, n_bins=10, strategy="equal_mass") == pytest.approx(
        ece_mass
    )
    table = reliability_table(y, p, n_bins=10, strategy="equal_mass")
    assert list(table["count"]) == [70] * 10


def test_multiclass_top_label_ece_and_brier_match_a_straightforward_computation() -> None:
    rng = np.random.default_rng(3)
    n, k = 900, 4
    prob = rng.dirichlet(np.ones(k) * 0.7, n)
    y = np.array([rng.choice(k, p=row**2 / (row**2).sum()) for row in prob])
    conf = prob.max(axis=1)
    hit = (prob.argmax(axis=1) == y).astype(float)
    edges = [(b / 15, (b + 1) / 15) for b in range(15)]
    assert expected_calibration_error(y, prob) == pytest.approx(_naive_ece(conf, hit, edges))
    onehot = np.eye(k)[y]
    assert brier_score(y, prob) == pytest.approx(np.mean(((prob - onehot) ** 2).sum(axis=1)))


def test_uniform_reliability_points_agree_with_sklearn_calibration_curve() -> None:
    rng = np.random.default_rng(5)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(int)
    table = reliability_table(y, p, n_bins=15)
    filled = table[table["count"] > 0]
    prob_true, prob_pred = calibration_curve(y, p, n_bins=15, strategy="uniform")
    np.testing.assert_allclose(filled["accuracy"], prob_true)
    np.testing.assert_allclose(filled["mean_confidence"], prob_pred)
    assert table["count"].sum() == 500 and len(table) == 15


def test_section_overall_and_per_group_with_small_sample_warning() -> None:
    rng = np.random.default_rng(6)
    n = 1000
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    groups = {"sex": rng.choice(["F", "M"], n, p=[0.8, 0.2])}
    with pytest.warns(AuditWarning, match="fewer than 300"):
        section = calibration_section(y, p, sensitive_features=groups)
    assert section["kind"] == "binary"
    assert section["overall"]["warning"] is None
    assert section["groups"]["sex"]["F"]["warning"] is None
    assert "sex=M: only" in section["groups"]["sex"]["M"]["warning"]
    assert section["warnings"] == [section["groups"]["sex"]["M"]["warning"]]
    m = groups["sex"] == "M"
    assert section["groups"]["sex"]["M"]["ece"]["uniform_15"] == pytest.approx(
        expected_calibration_error(y[m], p[m])
    )
    assert section["overall"]["ece"]["equal_mass_10"] == pytest.approx(
        expected_calibration_error(y, p, n_bins=10, strategy="equal_mass")
    )
    bins = section["overall"]["reliability"]["uniform_15"]
    assert len(bins) == 15
    assert set(bins[0]) == {"bin_low", "bin_high", "mean_confidence", "accuracy", "count"}
    json.dumps(to_jsonable(section), allow_nan=False)


def test_no_warning_at_300_examples_or_more() -> None:
    rng = np.random.default_rng(7)
    p = rng.random(300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AuditWarning)
        section = calibration_section((p > 0.5).astype(int), p)
    assert section["warnings"] == []


def test_two_column_probabilities_are_read_as_p_positive() -> None:
    p = np.array([0.1, 0.8, 0.4, 0.9])
    y = [0, 1, 1, 1]
    both = np.column_stack([1 - p, p])
    assert expected_calibration_error(y, both) == expected_calibration_error(y, p)
    assert brier_score(y, both) == brier_score(y, p)


def test_reliability_diagram_returns_a_figure_with_a_panel_per_attribute(tmp_path) -> None:
    rng = np.random.default_rng(8)
    p = rng.random(400)
    y = (rng.random(400) < p).astype(int)
    fig = reliability_diagram(
        y, p, sensitive_features={"sex": rng.choice(["F", "M"], 400)}, title="test"
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    fig.savefig(tmp_path / "reliability.png")
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    multi = reliability_diagram(
        rng.integers(0, 3, 400), rng.dirichlet([1, 1, 1], 400), strategy="equal_mass", n_bins=10
    )
    assert multi.axes[0].get_xlabel() == "mean P(top label)"
