"""Paired bootstrap deltas of a parent and a child model on the same rows (ethos.stats.paired)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ethos.errors import DataError
from ethos.stats.paired import (
    Metric,
    Predictions,
    RowMismatchError,
    accuracy,
    align_rows,
    auroc,
    equalized_odds_difference,
    group_rate,
    paired_bootstrap,
)

METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "auroc": auroc,
    "selection_rate[0]": group_rate("selection", 0),
    "tpr[1]": group_rate("tpr", 1),
    "fpr[1]": group_rate("fpr", 1),
    "equalized_odds_difference": equalized_odds_difference(),
}


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, Predictions, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    groups = rng.integers(0, 3, n)
    scores = np.clip(0.5 * y + rng.normal(0.25, 0.3, n), 0.0, 1.0)
    return y, Predictions(labels=(scores > 0.5).astype(int), scores=scores), groups


def test_identical_parent_and_child_give_exactly_zero_deltas_and_zero_width_intervals() -> None:
    """The issue 17 reference property: a run diffed with itself changes nothing, exactly."""
    y, model, groups = synthetic(300)
    result = paired_bootstrap(y, model, model, METRICS, groups=groups, n_resamples=200, seed=3)
    assert set(result) == set(METRICS)
    for name, delta in result.items():
        assert delta.delta == 0.0, name
        assert (delta.low, delta.high) == (0.0, 0.0), name
        assert delta.parent == delta.child, name


def test_identical_copies_not_the_same_object_also_give_exact_zero() -> None:
    y, model, groups = synthetic(200)
    copy = Predictions(labels=model.labels.copy(), scores=model.scores.copy())  # type: ignore[union-attr]
    result = paired_bootstrap(y, model, copy, METRICS, groups=groups, n_resamples=100)
    assert all(d.delta == 0.0 and d.low == 0.0 and d.high == 0.0 for d in result.values())


def test_child_flipping_k_known_rows_has_the_exact_accuracy_delta_inside_its_interval() -> None:
    y, parent, _ = synthetic(400, seed=1)
    labels = parent.labels.copy()  # type: ignore[union-attr]
    wrong = np.flatnonzero(labels != y)[:12]  # the child fixes 12 of the parent's mistakes
    labels[wrong] = y[wrong]
    child = Predictions(labels=labels)
    result = paired_bootstrap(y, parent, child, {"accuracy": accuracy}, n_resamples=500)["accuracy"]
    assert result.delta == pytest.approx(12 / 400, abs=1e-12)
    assert result.low <= result.delta <= result.high
    assert result.low >= 0.0  # every resample can only gain: the child is never worse on a row
    assert result.n_undefined == 0


def test_point_values_match_scikit_learn() -> None:
    y, parent, groups = synthetic(250, seed=2)
    _, child, _ = synthetic(250, seed=5)
    result = paired_bootstrap(y, parent, child, {"auroc": auroc}, groups=groups, n_resamples=50)
    assert result["auroc"].parent == pytest.approx(roc_auc_score(y, parent.scores))
    assert result["auroc"].child == pytest.approx(roc_auc_score(y, child.scores))


def test_interval_narrows_with_more_rows() -> None:
    def width(n: int) -> float:
        y, parent, _ = synthetic(n, seed=4)
        _, child, _ = synthetic(n, seed=9)
        d = paired_bootstrap(y, parent, child, {"accuracy": accuracy}, n_resamples=400)["accuracy"]
        return d.high - d.low

    assert width(4000) < width(250) / 2  # ~1/sqrt(n): 4 times narrower expected


def test_undefined_resamples_are_dropped_and_counted_not_fatal() -> None:
    # group 1 has one positive among many negatives: its TPR is undefined whenever the resample
    # misses that row; group 2 has only negatives, so its TPR is never defined.
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0])
    groups = np.array([1] * 10 + [0] * 5 + [2] * 3)
    parent = Predictions(labels=np.ones_like(y))
    child = Predictions(labels=np.r_[np.zeros(10, int), np.ones(8, int)])
    metrics = {"tpr[1]": group_rate("tpr", 1), "tpr[2]": group_rate("tpr", 2)}
    result = paired_bootstrap(y, parent, child, metrics, groups=groups, n_resamples=300, seed=0)
    tpr1 = result["tpr[1]"]
    assert 0 < tpr1.n_undefined < 300  # about (9/10)^10 ≈ 35 % of resamples miss the positive
    assert (tpr1.parent, tpr1.child, tpr1.delta) == (1.0, 0.0, -1.0)
    assert (tpr1.low, tpr1.high) == (-1.0, -1.0)
    tpr2 = result["tpr[2]"]
    assert tpr2.n_undefined == 300
    assert np.isnan([tpr2.parent, tpr2.child, tpr2.delta, tpr2.low, tpr2.high]).all()


def test_auroc_with_one_class_in_a_stratum_is_undefined_not_a_crash() -> None:
    y = np.array([1, 1, 1, 1])
    model = Predictions(scores=np.array([0.1, 0.4, 0.6, 0.9]))
    result = paired_bootstrap(y, model, model, {"auroc": auroc}, n_resamples=20)["auroc"]
    assert result.n_undefined == 20
    assert np.isnan(result.delta)


def test_stratified_resamples_keep_every_group_size() -> None:
    y, parent, groups = synthetic(120, seed=6)
    sizes = [int((groups == g).sum()) for g in range(3)]

    def group_size(g: int) -> Metric:
        return lambda _y, _p, grp: float((grp == g).sum())  # type: ignore[union-attr]

    metrics = {f"n[{g}]": group_size(g) for g in range(3)}
    result = paired_bootstrap(y, parent, parent, metrics, groups=groups, n_resamples=50)
    assert [result[f"n[{g}]"].parent for g in range(3)] == sizes


def test_deterministic_given_the_seed_and_different_across_seeds() -> None:
    y, parent, groups = synthetic(300, seed=7)
    _, child, _ = synthetic(300, seed=8)

    def run(seed: int) -> tuple[float, float]:
        d = paired_bootstrap(y, parent, child, METRICS, groups=groups, n_resamples=200, seed=seed)
        return d["accuracy"].low, d["equalized_odds_difference"].high

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_metric_order_does_not_change_the_draws() -> None:
    y, parent, groups = synthetic(200, seed=10)
    _, child, _ = synthetic(200, seed=11)
    forward = paired_bootstrap(y, parent, child, METRICS, groups=groups, n_resamples=100)
    backward = paired_bootstrap(
        y, parent, child, dict(reversed(METRICS.items())), groups=groups, n_resamples=100
    )
    assert forward == backward


def test_to_dict_is_json_shaped() -> None:
    y, model, _ = synthetic(50)
    d = paired_bootstrap(y, model, model, {"accuracy": accuracy}, n_resamples=10)["accuracy"]
    assert d.to_dict() == {
        "parent": d.parent,
        "child": d.parent,
        "delta": 0.0,
        "ci95": [0.0, 0.0],
        "n_resamples": 10,
        "n_undefined": 0,
    }


def test_align_rows_pairs_the_parent_rows_inside_a_larger_child() -> None:
    parent_ids = np.array(["r3", "r1", "r2"])
    child_ids = np.array(["f9", "r1", "r2", "f8", "r3"])  # the parent's rows plus feedback rows
    into_parent, into_child = align_rows(parent_ids, child_ids)
    assert (parent_ids[into_parent] == child_ids[into_child]).all()
    assert list(child_ids[into_child]) == ["r3", "r1", "r2"]


def test_unrelated_runs_are_refused_with_a_clear_error() -> None:
    with pytest.raises(RowMismatchError, match=r"not tested on the same rows: 2 of .* e\.g\. 7, 8"):
        align_rows(np.array([1, 2, 7, 8]), np.array([1, 2, 3, 4]))
    with pytest.raises(DataError, match="0 shared"):  # a DataError: the CLI prints it, exit 2
        align_rows(np.array([5, 6]), np.array([], dtype=int))


def test_duplicate_row_ids_are_refused() -> None:
    with pytest.raises(RowMismatchError, match="child run's test row ids repeat"):
        align_rows(np.array([1, 2]), np.array([1, 2, 2]))


def test_rows_that_do_not_line_up_are_refused_before_resampling() -> None:
    y, model, groups = synthetic(30)
    shorter = Predictions(labels=model.labels[:-1])  # type: ignore[index]
    with pytest.raises(RowMismatchError, match="parent: 30 rows, child: 29 rows"):
        paired_bootstrap(y, model, shorter, {"accuracy": accuracy}, n_resamples=5)
    with pytest.raises(RowMismatchError, match="groups: 29 rows"):
        paired_bootstrap(y, model, model, {"accuracy": accuracy}, groups=groups[:-1])
