"""Per-group thresholds: fairlearn's fitted rule, reproduced deterministically, saved as safe JSON.

The reference is fairlearn itself: the same ``ThresholdOptimizer`` fitted on the same synthetic
scores, its ``_pmf_predict`` (exact selection probabilities) and its randomised ``predict``
(rates within sampling tolerance).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fairlearn.metrics import (
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from ethos.errors import ConfigError, DataError, ModelError
from ethos.models.group_thresholds import (
    MAX_FILE_BYTES,
    POOLED,
    GroupRule,
    GroupThresholds,
    ThresholdRule,
    fit_group_thresholds,
    threshold_optimizer,
)

CONSTRAINTS = ["demographic_parity", "equalized_odds"]


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores that favour group 'a' (shifted up) and are noisier for 'c': a biased model."""
    rng = np.random.default_rng(seed)
    groups = rng.choice(np.array(["a", "b", "c"]), n, p=[0.5, 0.3, 0.2])
    labels = (rng.random(n) < np.where(groups == "a", 0.5, 0.35)).astype(int)
    noise = rng.normal(0, np.where(groups == "c", 1.6, 1.0), n)
    logits = 1.5 * (2 * labels - 1) + np.where(groups == "a", 1.2, -0.4) + noise
    return 1 / (1 + np.exp(-logits)), labels, groups


@pytest.fixture(scope="module")
def validation() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return synthetic(6000, seed=1)


@pytest.fixture(scope="module")
def held() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return synthetic(40000, seed=2)


@pytest.fixture(scope="module")
def fitted(validation: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, tuple]:
    """Per constraint: (our GroupThresholds, fairlearn's fitted ThresholdOptimizer)."""
    scores, labels, groups = validation
    out = {}
    for constraint in CONSTRAINTS:
        ours = fit_group_thresholds(
            scores, labels, groups, constraint=constraint, seed=11, attribute="race"
        )
        theirs = threshold_optimizer(constraint).fit(
            scores.reshape(-1, 1), labels, sensitive_features=groups
        )
        out[constraint] = (ours, theirs)
    return out


def keys(n: int) -> list[str]:
    return [f"row-{i}" for i in range(n)]


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_selection_probabilities_equal_fairlearns_pmf(fitted, held, constraint) -> None:
    ours, theirs = fitted[constraint]
    scores, _, groups = held
    expected = theirs._pmf_predict(scores.reshape(-1, 1), sensitive_features=groups)[:, 1]
    assert np.allclose(ours.selection_probability(scores, groups), expected, atol=1e-12)
    assert set(ours.groups) == {"a", "b", "c"}
    if constraint == "demographic_parity":
        assert all(rule.p_ignore == 0 for rule in ours.groups.values())


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_deterministic_decisions_match_fairlearn_predict_rates(fitted, held, constraint) -> None:
    """Per group, selection rate (DP) or TPR and FPR (EO) agree within ~4 standard errors."""
    ours, theirs = fitted[constraint]
    scores, labels, groups = held
    decided = ours.decide(scores, groups, keys(len(scores)))
    sampled = theirs.predict(scores.reshape(-1, 1), sensitive_features=groups, random_state=0)
    metrics = (
        [selection_rate]
        if constraint == "demographic_parity"
        else [true_positive_rate, false_positive_rate]
    )
    for group in ("a", "b", "c"):
        rows = groups == group
        for metric in metrics:
            mine = metric(labels[rows], decided[rows])
            fairlearns = metric(labels[rows], sampled[rows])
            assert abs(mine - fairlearns) < 0.03, (group, metric.__name__, mine, fairlearns)
    # And the constraint itself holds across groups for our decisions.
    for metric in metrics:
        rates = [metric(labels[groups == g], decided[groups == g]) for g in ("a", "b", "c")]
        assert max(rates) - min(rates) < 0.05, (metric.__name__, rates)


def test_equalized_odds_gap_shrinks_on_held_data(fitted, held) -> None:
    ours, _ = fitted["equalized_odds"]
    scores, labels, groups = held
    plain = equalized_odds_difference(labels, scores > 0.5, sensitive_features=groups)
    post = equalized_odds_difference(
        labels, ours.decide(scores, groups, keys(len(scores))), sensitive_features=groups
    )
    assert plain > 0.2
    assert post < plain / 4, (plain, post)


def test_decisions_are_deterministic_per_row_key(fitted, held, tmp_path: Path) -> None:
    ours, _ = fitted["equalized_odds"]
    scores, _, groups = held
    scores, groups, ids = scores[:3000], groups[:3000], keys(3000)
    first = ours.decide(scores, groups, ids)
    assert np.array_equal(first, ours.decide(scores, groups, ids))
    reloaded = GroupThresholds.load(ours.save(tmp_path / "t.json"))
    assert np.array_equal(first, reloaded.decide(scores, groups, ids))
    order = np.random.default_rng(0).permutation(3000)  # a row's decision ignores its neighbours
    shuffled = ours.decide(scores[order], groups[order], [ids[i] for i in order])
    assert np.array_equal(shuffled, first[order])
    reseeded = GroupThresholds(ours.constraint, 12, ours.groups, attribute=ours.attribute)
    assert not np.array_equal(first, reseeded.decide(scores, groups, ids))


def test_json_round_trip_keeps_everything_including_infinite_thresholds(
    fitted, tmp_path: Path
) -> None:
    for constraint in CONSTRAINTS:
        ours, _ = fitted[constraint]
        assert GroupThresholds.load(ours.save(tmp_path / f"{constraint}.json")) == ours
    edge = GroupThresholds(
        "equalized_odds",
        5,
        {
            "x": GroupRule((ThresholdRule(">", -np.inf, 0.25), ThresholdRule(">", 0.7, 0.75))),
            "y": GroupRule((ThresholdRule(">", np.inf, 1.0),), p_ignore=0.5, prediction_constant=1),
        },
    )
    path = edge.save(tmp_path / "edge.json")
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert '"-inf"' in text and '"inf"' in text
    loaded = GroupThresholds.load(path)
    assert loaded == edge
    assert np.array_equal(
        loaded.selection_probability([0.1, 0.9, 0.5], ["x", "x", "y"]), [0.25, 1, 0.5]
    )
    assert "GroupThresholds(equalized_odds" in repr(loaded)


def _valid() -> dict:
    return GroupThresholds(
        "demographic_parity",
        3,
        {
            "a": GroupRule((ThresholdRule(">", 0.4, 0.5), ThresholdRule(">", 0.5, 0.5))),
            "b": GroupRule((ThresholdRule(">", 0.6, 1.0),)),
        },
        attribute="race",
    ).to_json()


def _edit(change) -> str:
    payload = _valid()
    change(payload)
    return json.dumps(payload)


MALFORMED = {
    "empty": ("", "not valid JSON"),
    "not_json": ("threshold: 0.5\n", "not valid JSON"),
    "not_utf8": (b"\xff\xfe{", "not valid JSON"),
    "a_list": ("[1, 2]", "must be an object"),
    "nan_literal": (
        json.dumps(_valid()).replace('"threshold": 0.4', '"threshold": NaN'),
        "not valid JSON",
    ),
    "infinity_literal": (
        json.dumps(_valid()).replace('"threshold": 0.4', '"threshold": Infinity'),
        "not valid JSON",
    ),
    "huge_float": (
        json.dumps(_valid()).replace('"threshold": 0.4', '"threshold": 1e999'),
        "must be finite",
    ),
    "huge_int": (json.dumps(_valid()).replace('"seed": 3', '"seed": ' + "9" * 5000), "JSON"),
    "big_seed": (json.dumps(_valid()).replace('"seed": 3', '"seed": ' + "9" * 40), "seed"),
    "string_probability": (
        _edit(lambda p: p["groups"]["b"]["rules"][0].update(probability="1")),
        "must be a number",
    ),
    "bool_seed": (_edit(lambda p: p.update(seed=True)), "seed must be an integer"),
    "probability_above_one": (
        _edit(lambda p: p["groups"]["a"].update(p_ignore=1.5)),
        "probability in [0, 1]",
    ),
    "probabilities_not_summing": (
        _edit(lambda p: p["groups"]["a"]["rules"][0].update(probability=0.2)),
        "add up to",
    ),
    "bad_operator": (
        _edit(lambda p: p["groups"]["b"]["rules"][0].update(operator=">=")),
        "operator",
    ),
    "bad_threshold_string": (
        _edit(lambda p: p["groups"]["b"]["rules"][0].update(threshold="nan")),
        "'inf' or '-inf'",
    ),
    "three_rules": (
        _edit(lambda p: p["groups"]["b"]["rules"].extend([{}, {}])),
        "one or two rules",
    ),
    "unknown_top_key": (_edit(lambda p: p.update(code="import os")), "unknown key"),
    "unknown_group_key": (_edit(lambda p: p["groups"]["a"].update(extra=1)), "unknown key"),
    "missing_key": (_edit(lambda p: p.pop("seed")), "lacks key"),
    "group_not_object": (_edit(lambda p: p["groups"].update(c=[0.5])), "must be an object"),
    "empty_group_name": (
        _edit(lambda p: p["groups"].update({"": p["groups"]["a"]})),
        "group name",
    ),
    "no_groups": (_edit(lambda p: p.update(groups={})), "non-empty"),
    "duplicate_group": (
        json.dumps(_valid()).replace('"b": {', '"a": {'),
        "duplicate key",
    ),
    "wrong_format": (_edit(lambda p: p.update(format="pickle")), "format must be"),
    "newer_version": (_edit(lambda p: p.update(format_version=2)), "newer than"),
    "bad_constraint": (_edit(lambda p: p.update(constraint="fairness")), "constraint"),
    "deep_nesting": ("[" * 100_000 + "]" * 100_000, "JSON"),
    "ten_megabytes": (" " * 10_000_000 + json.dumps(_valid()), f"larger than {MAX_FILE_BYTES}"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_or_hostile_files_give_a_clear_error(case: str, tmp_path: Path) -> None:
    content, message = MALFORMED[case]
    path = tmp_path / "group_thresholds.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ModelError) as caught:
        GroupThresholds.load(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_valid_fixture_document_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(_valid()))
    assert GroupThresholds.load(path).attribute == "race"
    with pytest.raises(ModelError, match="does not exist"):
        GroupThresholds.load(tmp_path / "absent.json")


def test_unknown_or_missing_group_is_refused_not_guessed() -> None:
    rules = GroupThresholds.from_json(_valid())
    with pytest.raises(DataError) as caught:
        rules.decide([0.5, 0.5], ["a", "Martian"], ["1", "2"])
    text = str(caught.value)
    assert "'Martian'" in text and "'a', 'b'" in text and "attribute 'race'" in text
    for missing in (None, float("nan"), ""):
        with pytest.raises(DataError, match="no group value"):
            rules.decide([0.5, 0.5], ["a", missing], ["1", "2"])
    with pytest.raises(DataError, match="no row key"):
        rules.decide([0.5, 0.5], ["a", "b"], ["1", None])
    with pytest.raises(DataError, match="finite"):
        rules.decide([0.5, float("nan")], ["a", "b"], ["1", "2"])


def test_fit_refuses_groups_with_one_label_and_unknown_constraints() -> None:
    scores = np.array([0.2, 0.8, 0.3, 0.9, 0.6])
    labels = np.array([0, 1, 0, 1, 1])
    groups = ["a", "a", "b", "b", "c"]
    # 'c' is too small for a rule of its own and is pooled; the pool alone still lacks a label.
    with pytest.raises(DataError, match=r"pooled\)' = 'c' \(0 negative, 1 positive\)"):
        fit_group_thresholds(scores, labels, groups, constraint="equalized_odds", seed=0)
    with pytest.raises(ConfigError, match="unknown fairness constraint"):
        fit_group_thresholds(scores, labels, groups, constraint="parity", seed=0)


def test_small_groups_share_one_pooled_rule() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    groups = rng.choice(["big", "large", "tiny1", "tiny2"], size=n, p=[0.5, 0.49, 0.005, 0.005])
    labels = rng.integers(0, 2, size=n)
    scores = np.clip(0.3 * labels + rng.normal(0.35, 0.2, size=n), 0, 1)
    fitted = fit_group_thresholds(
        scores,
        labels,
        groups,
        constraint="equalized_odds",
        seed=1,
        min_group_size=30,
        known_groups=["big", "large", "tiny1", "tiny2", "train-only"],
    )
    assert fitted.pooled == ("tiny1", "tiny2", "train-only")  # no validation rows: pooled too
    assert set(fitted.groups) == {"big", "large", POOLED}
    decided = fitted.decide(scores[:50], ["tiny2"] * 50, np.arange(50))
    assert set(decided.tolist()) <= {0, 1}
    again = GroupThresholds.from_json(json.loads(json.dumps(fitted.to_json())))
    assert again.pooled == fitted.pooled
    assert np.array_equal(
        again.decide(scores[:50], ["tiny1"] * 50, np.arange(50)),
        fitted.decide(scores[:50], ["tiny1"] * 50, np.arange(50)),
    )
    with pytest.raises(DataError, match="no fitted threshold"):
        fitted.decide(scores[:2], ["unseen", "unseen"], [0, 1])
