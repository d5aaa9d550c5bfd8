"""Fairness metrics: published references, cross-checks against fairlearn, bootstrap, sections."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import precision_score

from ethos.audit import (
    DISPARITIES,
    disparities,
    fairness_section,
    group_metrics,
    to_jsonable,
)
from ethos.audit.fairness import FOUR_FIFTHS_CAVEAT

# Fairlearn user guide, "Common fairness metrics" (assessment.rst): the worked example.
GUIDE_Y_TRUE = [0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]
GUIDE_Y_PRED = [0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0]
GUIDE_GROUPS = list("bbabbcccaacabccbcc")


def test_fairlearn_user_guide_common_fairness_metrics_reference() -> None:
    result = disparities(
        GUIDE_Y_TRUE, GUIDE_Y_PRED, sensitive_features=GUIDE_GROUPS, n_bootstrap=200
    )
    assert result["demographic_parity_difference"]["value"] == pytest.approx(0.25, abs=1e-3)
    assert result["demographic_parity_ratio"]["value"] == pytest.approx(0.667, abs=1e-3)
    assert result["equalized_odds_difference"]["value"] == pytest.approx(1.0, abs=1e-3)


def _random_data(seed: int, n: int = 600, n_groups: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    groups = rng.choice([f"g{i}" for i in range(n_groups)], size=n)
    y_true = rng.integers(0, 2, size=n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true)
    score = np.clip(y_pred * 0.6 + rng.random(n) * 0.4, 0, 1)
    return y_true, y_pred, groups, score


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_metrics_match_fairlearn_metricframe(seed: int) -> None:
    y_true, y_pred, groups, _ = _random_data(seed)
    ours = group_metrics(y_true, y_pred, sensitive_features=groups)
    theirs = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
            "ppv": lambda t, p: precision_score(t, p),
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    ).by_group
    for column in theirs.columns:
        np.testing.assert_allclose(ours[column].to_numpy(), theirs[column].to_numpy())
    frame = pd.DataFrame({"t": y_true, "p": y_pred, "g": groups})
    by = frame.groupby("g")
    np.testing.assert_allclose(ours["count"].to_numpy(), by.size().to_numpy())
    np.testing.assert_allclose(ours["base_rate"].to_numpy(), by["t"].mean().to_numpy())
    np.testing.assert_allclose(
        ours["accuracy"].to_numpy(), by.apply(lambda d: (d.t == d.p).mean()).to_numpy()
    )
    npv = by.apply(lambda d: ((d.t == 0) & (d.p == 0)).sum() / (d.p == 0).sum())
    np.testing.assert_allclose(ours["npv"].to_numpy(), npv.to_numpy())


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(30, 200),
    n_groups=st.integers(2, 4),
)
def test_disparity_point_values_match_fairlearn(seed: int, n: int, n_groups: int) -> None:
    y_true, y_pred, groups, _ = _random_data(seed, n, n_groups)
    frame = pd.DataFrame({"t": y_true, "p": y_pred, "g": groups})
    counts = frame.groupby("g").agg(pos=("t", "sum"), n=("t", "size"), sel=("p", "sum"))
    # fairlearn turns undefined rates into 0 (with a warning); compare only where all are defined
    if (
        counts.shape[0] < 2
        or (counts["pos"] == 0).any()
        or (counts["pos"] == counts["n"]).any()
        or (counts["sel"] == 0).any()
    ):
        assume(False)
    ours = disparities(y_true, y_pred, sensitive_features=groups, n_bootstrap=0)
    kw = {"sensitive_features": groups}
    expected = {
        "demographic_parity_difference": demographic_parity_difference(y_true, y_pred, **kw),
        "demographic_parity_ratio": demographic_parity_ratio(y_true, y_pred, **kw),
        "equalized_odds_difference": equalized_odds_difference(y_true, y_pred, **kw),
        "equalized_odds_ratio": equalized_odds_ratio(y_true, y_pred, **kw),
        "equal_opportunity_difference": equal_opportunity_difference(y_true, y_pred, **kw),
        "disparate_impact_ratio": demographic_parity_ratio(y_true, y_pred, **kw),
        "predictive_parity_difference": MetricFrame(
            metrics=lambda t, p: precision_score(t, p, zero_division=np.nan),
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups,
        ).difference(),
    }
    for name, value in expected.items():
        assert ours[name]["value"] == pytest.approx(value, abs=1e-12), name


def test_bootstrap_point_values_equal_the_unbootstrapped_ones() -> None:
    y_true, y_pred, groups, _ = _random_data(7, n=800)
    plain = disparities(y_true, y_pred, sensitive_features=groups, n_bootstrap=0)
    boot = disparities(y_true, y_pred, sensitive_features=groups, n_bootstrap=500, seed=3)
    table = group_metrics(y_true, y_pred, sensitive_features=groups)
    for name in DISPARITIES:
        assert boot[name]["value"] == plain[name]["value"]
        assert np.isnan(plain[name]["ci_low"]) and np.isnan(plain[name]["ci_high"])
        assert boot[name]["ci_low"] <= boot[name]["value"] + 1e-12
        assert boot[name]["value"] <= boot[name]["ci_high"] + 1e-12
    sr = table["selection_rate"]
    assert plain["demographic_parity_difference"]["value"] == pytest.approx(sr.max() - sr.min())
    assert plain["predictive_parity_difference"]["value"] == pytest.approx(
        table["ppv"].max() - table["ppv"].min()
    )


def test_bootstrap_is_seeded_and_matches_a_naive_row_resampling_bootstrap() -> None:
    y_true, y_pred, groups, _ = _random_data(11, n=900)
    a = disparities(y_true, y_pred, sensitive_features=groups, n_bootstrap=2000, seed=5)
    b = disparities(y_true, y_pred, sensitive_features=groups, n_bootstrap=2000, seed=5)
    c = disparities(y_true, y_pred, sensitive_features=groups, n_bootstrap=2000, seed=6)
    assert a == b
    assert a != c
    # the multinomial draw is, in distribution, the same as resampling rows within each group
    rng = np.random.default_rng(0)
    rates = []
    for g in np.unique(groups):
        ix = np.flatnonzero(groups == g)
        rows = rng.choice(ix, size=(2000, ix.size))  # 2000 resamples of the group's rows
        rates.append(y_pred[rows].mean(axis=1))
    values = np.max(rates, axis=0) - np.min(rates, axis=0)
    low, high = np.percentile(values, [2.5, 97.5])
    assert a["demographic_parity_difference"]["ci_low"] == pytest.approx(low, abs=0.012)
    assert a["demographic_parity_difference"]["ci_high"] == pytest.approx(high, abs=0.012)


def test_bootstrap_of_1000_resamples_on_6000_rows_is_fast() -> None:
    rng = np.random.default_rng(0)
    n = 6000
    frame = pd.DataFrame(
        {"race": rng.choice(["a", "b", "c", "d"], n), "sex": rng.choice(["f", "m"], n)}
    )
    y_true = rng.integers(0, 2, n)
    y_pred = rng.integers(0, 2, n)
    start = time.perf_counter()
    for sensitive in (frame["race"], frame["sex"], frame):  # race, sex, race*sex
        disparities(y_true, y_pred, sensitive_features=sensitive, n_bootstrap=1000)
    assert time.perf_counter() - start < 1.5


def test_undefined_rates_are_nan_not_a_crash() -> None:
    y_true = [1, 1, 0, 0, 1, 0]
    y_pred = [1, 0, 0, 1, 1, 0]
    groups = ["a", "a", "b", "b", "c", "c"]  # group a has no negatives, b no positives
    table = group_metrics(y_true, y_pred, sensitive_features=groups, y_score=[0.9] * 6)
    assert np.isnan(table.loc["a", "fpr"]) and np.isnan(table.loc["b", "tpr"])
    assert np.isnan(table.loc["a", "auroc"]) and np.isnan(table.loc["b", "auroc"])
    assert table.loc["c", "auroc"] == 0.5
    result = disparities(y_true, y_pred, sensitive_features=groups, n_bootstrap=100)
    assert result["equal_opportunity_difference"]["value"] == pytest.approx(0.5)  # a vs c only


def test_auroc_by_group_matches_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    y_true, y_pred, groups, score = _random_data(3)
    table = group_metrics(y_true, y_pred, sensitive_features=groups, y_score=score)
    for g in np.unique(groups):
        m = groups == g
        assert table.loc[g, "auroc"] == pytest.approx(roc_auc_score(y_true[m], score[m]))


def _section_data() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(1)
    n = 400
    race = rng.choice(["A", "B", "C"], n, p=[0.5, 0.45, 0.05])
    sex = rng.choice(["F", "M"], n)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < (0.4 + 0.3 * (race == "A")), 1, 0)
    return y_true, y_pred, pd.DataFrame({"race": race, "sex": sex})


def test_fairness_section_has_the_documented_shape_and_is_json() -> None:
    y_true, y_pred, frame = _section_data()
    section = fairness_section(y_true, y_pred, sensitive_features=frame, n_bootstrap=200)
    assert set(section) == {"race", "sex", "race*sex"}
    for entry in section.values():
        assert {"groups", "disparities", "four_fifths_rule"} <= set(entry)
        for row in entry["groups"].values():
            assert {
                "count",
                "selection_rate",
                "tpr",
                "fpr",
                "fnr",
                "ppv",
                "npv",
                "accuracy",
                "base_rate",
                "used_for_disparities",
            } <= set(row)
            assert isinstance(row["used_for_disparities"], bool)
        assert set(entry["disparities"]) == set(DISPARITIES)
        for interval in entry["disparities"].values():
            assert set(interval) == {"value", "ci_low", "ci_high"}
        assert isinstance(entry["four_fifths_rule"]["passes"], bool)
        assert entry["four_fifths_rule"]["caveat"].startswith(FOUR_FIFTHS_CAVEAT)
        assert "screening heuristic, not a legal test" in entry["four_fifths_rule"]["caveat"]
    json.dumps(to_jsonable(section), allow_nan=False)


def test_small_intersectional_groups_are_reported_but_not_used() -> None:
    y_true, y_pred, frame = _section_data()
    section = fairness_section(
        y_true, y_pred, sensitive_features=frame, n_bootstrap=0, min_group_size=30
    )
    inter = section["race*sex"]["groups"]
    assert set(inter) == {f"{r}*{s}" for r in "ABC" for s in "FM"}
    for name, row in inter.items():
        assert row["used_for_disparities"] == (row["count"] >= 30), name
    assert not inter["C*F"]["used_for_disparities"]
    used = frame.assign(r=frame.race + "*" + frame.sex)
    keep = used.r.isin([g for g, row in inter.items() if row["used_for_disparities"]]).to_numpy()
    expected = disparities(
        y_true[keep], y_pred[keep], sensitive_features=used.r[keep], n_bootstrap=0
    )
    got = section["race*sex"]["disparities"]
    for name in DISPARITIES:
        assert got[name]["value"] == pytest.approx(expected[name]["value"])


def test_four_fifths_rule_flags_a_low_ratio() -> None:
    y_true, y_pred, frame = _section_data()
    section = fairness_section(y_true, y_pred, sensitive_features=frame, n_bootstrap=0)
    rule = section["race"]["four_fifths_rule"]
    ratio = section["race"]["disparities"]["disparate_impact_ratio"]["value"]
    assert ratio < 0.8 and rule["passes"] is False and rule["evaluable"] is True
    # one group too small for anything: not evaluable, reported as not passing
    tiny = fairness_section(
        y_true, y_pred, sensitive_features=frame[["sex"]], n_bootstrap=0, min_group_size=10_000
    )
    assert tiny["sex"]["four_fifths_rule"] == {
        **tiny["sex"]["four_fifths_rule"],
        "passes": False,
        "evaluable": False,
    }


def test_multiclass_is_audited_one_vs_rest() -> None:
    rng = np.random.default_rng(4)
    n = 500
    groups = rng.choice(["x", "y"], n)
    y_true = rng.choice(["cat", "dog", "eel"], n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.choice(["cat", "dog", "eel"], n))
    probs = rng.dirichlet([1, 1, 1], n)
    section = fairness_section(
        y_true, y_pred, sensitive_features={"g": groups}, y_score=probs, n_bootstrap=100
    )["g"]
    assert set(section["classes"]) == {"cat", "dog", "eel"}
    for cls, entry in section["classes"].items():
        expected = disparities(
            (y_true == cls).astype(int),
            (y_pred == cls).astype(int),
            sensitive_features=groups,
            n_bootstrap=0,
        )
        for name in DISPARITIES:
            assert entry["disparities"][name]["value"] == pytest.approx(expected[name]["value"])
        assert "auroc" in entry["groups"]["x"]
    worst_dp = max(
        e["disparities"]["demographic_parity_difference"]["value"]
        for e in section["classes"].values()
    )
    assert section["disparities"]["demographic_parity_difference"]["value"] == worst_dp
    assert section["groups"]["x"]["tpr"] is None
    table = group_metrics(y_true, y_pred, sensitive_features=groups)
    assert table.index.names == ["class", "sensitive_feature"]
    json.dumps(to_jsonable(section), allow_nan=False)


def test_section_group_rows_equal_group_metrics() -> None:
    y_true, y_pred, frame = _section_data()
    score = np.random.default_rng(2).random(len(y_true))
    section = fairness_section(
        y_true, y_pred, sensitive_features=frame, y_score=score, n_bootstrap=0
    )
    for attribute, sensitive in [("race", frame["race"]), ("sex", frame["sex"])]:
        table = group_metrics(y_true, y_pred, sensitive_features=sensitive, y_score=score)
        rows = section[attribute]["groups"]
        assert list(rows) == [str(g) for g in table.index]
        for group, expected in table.iterrows():
            for column, value in expected.items():
                assert rows[str(group)][column] == pytest.approx(value, nan_ok=True), column
    inter = group_metrics(y_true, y_pred, sensitive_features=frame, y_score=score)
    for (race, sex), expected in inter.iterrows():
        got = section["race*sex"]["groups"][f"{race}*{sex}"]
        for column, value in expected.items():
            assert got[column] == pytest.approx(value, nan_ok=True), column


def test_multiclass_section_class_rows_equal_group_metrics() -> None:
    rng = np.random.default_rng(9)
    n = 300
    groups = rng.choice(["x", "y", "z"], n)
    y_true = rng.integers(0, 3, n)
    y_pred = rng.integers(0, 3, n)
    probs = rng.dirichlet([1, 1, 1], n)
    section = fairness_section(
        y_true, y_pred, sensitive_features={"g": groups}, y_score=probs, n_bootstrap=0
    )["g"]
    table = group_metrics(y_true, y_pred, sensitive_features=groups, y_score=probs)
    for (cls, group), expected in table.iterrows():
        got = section["classes"][str(cls)]["groups"][str(group)]
        for column, value in expected.items():
            assert got[column] == pytest.approx(value, nan_ok=True), column
    for group in "xyz":
        m = groups == group
        assert section["groups"][group]["accuracy"] == pytest.approx(
            np.mean(y_true[m] == y_pred[m])
        )
