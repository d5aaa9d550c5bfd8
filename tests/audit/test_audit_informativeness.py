"""The informativeness check, the screens it changes, sample-size warnings and the report fixes.

Everything here works on arrays or hand-made audit dicts (no model is trained); the end-to-end case
on a real run is in tests/governance/test_informative.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from ethos.audit import svg
from ethos.audit.informativeness import NOT_MEANINGFUL, informativeness_section
from ethos.audit.report import render_report
from ethos.audit.runner import audit_predictions
from ethos.audit.sample_size import RELIABLE_GROUP_SIZE, group_size_warnings, half_width
from ethos.audit.summary import summarise
from ethos.stats.informativeness import macro_auroc, weighted_auroc


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores that rank well (AUROC about 0.8) and labels drawn from them."""
    rng = np.random.default_rng(seed)
    score = np.round(rng.random(n), 2)  # rounded: ties exercise the one-half rule
    return (rng.random(n) < score).astype(int), score


# ---------------------------------------------------------------------------------------------
# AUROC and its bootstrap.


def test_weighted_auroc_matches_sklearn_with_ties_and_weights() -> None:
    y, score = _data()
    assert weighted_auroc(score, y == 1, np.ones((1, len(y))))[0] == pytest.approx(
        roc_auc_score(y, score), abs=1e-12
    )
    weights = np.random.default_rng(1).integers(0, 4, size=(3, len(y))).astype(float)
    for row in weights:
        expected = roc_auc_score(y, score, sample_weight=row)
        assert weighted_auroc(score, y == 1, row[None, :])[0] == pytest.approx(expected, abs=1e-12)


def test_macro_auroc_matches_sklearn_one_vs_rest() -> None:
    rng = np.random.default_rng(2)
    prob = rng.dirichlet([1.0, 1.0, 1.0], 300)
    y = np.array([rng.choice(3, p=p) for p in prob])
    expected = roc_auc_score(y, prob, multi_class="ovr", average="macro")
    assert macro_auroc(y, prob, np.ones((1, 300)))[0] == pytest.approx(expected, abs=1e-12)


def test_decisions_only_auroc_is_the_balanced_accuracy() -> None:
    y, score = _data()
    decided = (score > 0.5).astype(int)
    section = informativeness_section(y, decided)
    assert section["auroc"]["scores"] == "decisions"
    assert section["auroc"]["value"] == pytest.approx(balanced_accuracy_score(y, decided))


# ---------------------------------------------------------------------------------------------
# The rule.


def test_a_constant_prediction_is_not_informative_on_all_three_counts() -> None:
    y, _ = _data()
    majority = int(np.bincount(y).argmax())
    section = informativeness_section(
        y, np.full(len(y), majority), y_prob=np.full(len(y), y.mean()), label_names=["no", "yes"]
    )
    assert section["informative"] is False
    assert section["constant_prediction"] is True
    assert section["predicted_classes"] == {["no", "yes"][majority]: len(y)}
    assert section["accuracy"] == pytest.approx(section["majority_accuracy"])
    assert section["beats_majority"] is False
    assert section["auroc"]["value"] == 0.5 and section["auroc"]["above_chance"] is False
    assert len(section["reasons"]) == 3
    assert "constant prediction" in section["reasons"][0]


def test_a_model_that_ranks_well_is_informative() -> None:
    y, score = _data()
    section = informativeness_section(y, (score > 0.5).astype(int), y_prob=score)
    assert section["informative"] is True and section["reasons"] == []
    assert section["auroc"]["ci_low"] > 0.7 and section["beats_majority"] is True
    json.dumps(section, allow_nan=False)


def test_accuracy_not_above_the_majority_alone_makes_it_not_informative() -> None:
    # 90 % negatives; the scores rank well, but the decisions (threshold 0.3) are less accurate
    # than always answering "no"
    rng = np.random.default_rng(3)
    y = (rng.random(1000) < 0.1).astype(int)
    score = np.clip(0.25 + 0.4 * y + rng.normal(0, 0.1, 1000), 0, 1)
    section = informativeness_section(y, (score > 0.3).astype(int), y_prob=score)
    assert section["auroc"]["above_chance"] is True and not section["constant_prediction"]
    assert section["accuracy"] <= section["majority_accuracy"]
    assert section["informative"] is False
    assert section["reasons"] == [
        f"accuracy {section['accuracy']:.3f} is not above the majority baseline "
        f"{section['majority_accuracy']:.3f}"
    ]


def test_an_auroc_interval_that_includes_chance_alone_makes_it_not_informative() -> None:
    # 20 balanced rows, 12 right: accuracy 0.6 beats the majority (0.5), but on 20 rows the
    # AUROC interval is wide enough to include 0.5
    y = np.array([0] * 10 + [1] * 10)
    decided = np.array([0] * 6 + [1] * 4 + [1] * 6 + [0] * 4)
    section = informativeness_section(y, decided, y_prob=decided * 0.5 + 0.25)
    assert section["beats_majority"] is True and not section["constant_prediction"]
    assert section["auroc"]["ci_low"] <= 0.5 < section["auroc"]["ci_high"]
    assert section["informative"] is False
    assert len(section["reasons"]) == 1 and "not above chance" in section["reasons"][0]


def test_the_recorded_majority_baseline_is_used_when_it_is_higher() -> None:
    y, score = _data()
    decided = (score > 0.5).astype(int)
    plain = informativeness_section(y, decided, y_prob=score)
    higher = plain["accuracy"] + 0.01
    section = informativeness_section(
        y,
        decided,
        y_prob=score,
        baselines={"majority": {"accuracy": higher}, "tfidf_logreg": {"accuracy": 0.7}},
    )
    assert section["majority"] == {"audited_rows": plain["majority_accuracy"], "recorded": higher}
    assert section["majority_accuracy"] == higher and section["informative"] is False
    assert section["tfidf_logreg"] == {"accuracy": 0.7, "auroc": None}  # reported, not decisive


def test_one_true_class_leaves_auroc_unjudged() -> None:
    section = informativeness_section(np.ones(50, int), np.r_[np.ones(45, int), np.zeros(5, int)])
    assert section["auroc"]["above_chance"] is None and "undefined" in section["note"]
    assert section["informative"] is False  # 0.9 accuracy does not beat always answering 1


def test_without_resamples_the_point_value_is_compared_with_chance() -> None:
    y, score = _data(n=100)
    auroc = informativeness_section(y, score > 0.5, y_prob=score, n_bootstrap=0)["auroc"]
    assert np.isnan(auroc["ci_low"]) and auroc["above_chance"] is True


def test_large_files_are_resampled_in_chunks_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ethos.stats import informativeness as module

    y, score = _data(n=300)
    whole = informativeness_section(y, score > 0.5, y_prob=score, n_bootstrap=200)
    monkeypatch.setattr(module, "CHUNK_CELLS", 300 * 7)  # 7 resamples per chunk
    chunked = informativeness_section(y, score > 0.5, y_prob=score, n_bootstrap=200)
    assert chunked["auroc"]["value"] == whole["auroc"]["value"]
    assert chunked["auroc"]["ci_low"] == pytest.approx(whole["auroc"]["ci_low"], abs=0.02)
    assert chunked["auroc"]["above_chance"] is True


def test_the_bootstrap_is_seeded() -> None:
    y, score = _data(n=200)
    first = informativeness_section(y, score > 0.5, y_prob=score, seed=4)
    assert informativeness_section(y, score > 0.5, y_prob=score, seed=4) == first
    other = informativeness_section(y, score > 0.5, y_prob=score, seed=5)
    assert other["auroc"]["ci_low"] != first["auroc"]["ci_low"]


# ---------------------------------------------------------------------------------------------
# The summary screens.

NOT_INFORMATIVE: dict[str, Any] = {
    "informative": False,
    "reasons": ["constant prediction: every row is predicted 'no'"],
}


def _audit(informative: bool) -> dict[str, Any]:
    section = NOT_INFORMATIVE if not informative else {"informative": True, "reasons": []}
    groups = {
        "A": {"count": 400, "used_for_disparities": True},
        "B": {"count": 12, "used_for_disparities": True},
        "C": {"count": 3, "used_for_disparities": False},
    }
    return {
        "informativeness": {**section, "accuracy": 0.541, "majority_accuracy": 0.541},
        "fairness": {
            "race": {
                "min_group_size": 5,
                "groups": groups,
                "disparities": {"equalized_odds_difference": {"value": 0.0}},
                "four_fifths_rule": {"evaluable": False},
            }
        },
        "calibration": {"overall": {"ece": {"uniform_15": 0.043}}},
        "robustness": {"noise": {"typos": {"flip_rate": 0.0, "n": 50}}, "max_flip_rate": 0.0},
    }


def test_a_model_that_is_not_informative_is_red_and_its_other_screens_not_meaningful() -> None:
    summary = summarise(_audit(informative=False))
    assert summary["informativeness"]["status"] == "red"
    assert summary["informativeness"]["reasons"] == [
        "not informative",
        "constant prediction: every row is predicted 'no'",
    ]
    for dimension in ("fairness", "calibration", "robustness"):
        assert summary[dimension]["status"] == "grey", dimension
        assert summary[dimension]["reasons"][0] == NOT_MEANINGFUL
    assert "measured: ECE 0.043" in summary["calibration"]["reasons"]


def test_an_informative_model_keeps_its_screens() -> None:
    summary = summarise(_audit(informative=True))
    assert summary["informativeness"]["status"] == "green"
    assert summary["calibration"]["status"] == "green"
    assert summary["robustness"]["status"] == "green"
    assert NOT_MEANINGFUL not in summary["calibration"]["reasons"]


def test_an_audit_without_the_check_is_not_judged() -> None:
    audit = _audit(informative=True)
    del audit["informativeness"]
    summary = summarise(audit)
    assert summary["informativeness"]["status"] == "grey"
    assert summary["calibration"]["status"] == "green"


def test_grey_fairness_says_why() -> None:
    audit = _audit(informative=True)
    audit["fairness"]["race"]["disparities"]["equalized_odds_difference"]["value"] = None
    reasons = summarise(audit)["fairness"]["reasons"]
    assert reasons == [
        "no disparity computed: no attribute has two groups with at least min_group_size (5) rows"
    ]


# ---------------------------------------------------------------------------------------------
# Sample-size warnings.


def test_every_small_group_is_warned_about_and_the_screen_is_amber() -> None:
    audit = _audit(informative=True)
    found = group_size_warnings(audit["fairness"])
    assert [(w["group"], w["n"], w["used"]) for w in found] == [("C", 3, False), ("B", 12, True)]
    assert found[0]["message"] == "race=C n=3: left out of the disparities (min_group_size 5)"
    assert "race=B n=12: compared" in found[1]["message"]
    assert f"±{half_width(12):.2f}" in found[1]["message"]
    screen = summarise(audit)["sample_size"]
    assert screen["status"] == "amber" and screen["warnings"] == found
    assert screen["reasons"] == [
        "1 compared group(s) under 30 rows (rates unreliable), 1 left out under min_group_size",
        "race: B n=12; left out: C n=3",
    ]


def test_groups_at_the_floor_are_not_warned_about() -> None:
    groups = {
        "A": {"count": RELIABLE_GROUP_SIZE, "used_for_disparities": True},
        "B": {"count": RELIABLE_GROUP_SIZE - 1, "used_for_disparities": True},
    }
    found = group_size_warnings({"sex": {"min_group_size": 1, "groups": groups}})
    assert [w["group"] for w in found] == ["B"]
    assert half_width(30) == pytest.approx(1.96 * 0.5 / np.sqrt(30))


def test_left_out_groups_alone_keep_the_screen_green() -> None:
    groups = {
        "A": {"count": 100, "used_for_disparities": True},
        "B": {"count": 80, "used_for_disparities": True},
        "C": {"count": 2, "used_for_disparities": False},
    }
    screen = summarise({"fairness": {"sex": {"min_group_size": 5, "groups": groups}}})
    assert screen["sample_size"]["status"] == "green"
    assert screen["sample_size"]["reasons"][1:] == ["sex: left out: C n=2"]
    assert screen["sample_size"]["warnings"][0]["message"] == (
        "sex=C n=2: left out of the disparities (min_group_size 5)"
    )


# ---------------------------------------------------------------------------------------------
# The report.


def test_report_shows_not_informative_in_red_and_small_groups() -> None:
    audit = _audit(informative=False)
    audit["informativeness"].update(
        {"auroc": {"value": 0.5, "ci_low": 0.5, "ci_high": 0.5, "scores": "probabilities"}}
    )
    audit["summary"] = summarise(audit)
    html = render_report(audit)
    assert "id='not-informative'" in html and "Not informative: constant prediction" in html
    assert html.index("not-informative") < html.index("id='summary'")
    assert "<h2 id='informativeness'>" in html
    assert NOT_MEANINGFUL in html
    assert "race=B n=12: compared" in html and "race=C n=3: left out" in html


def test_report_says_so_when_every_flip_rate_is_zero() -> None:
    audit = _audit(informative=False)
    html = render_report(audit)
    chart = re.search(r"<svg[^>]*>\s*<title>prediction flip rate.*?</svg>", html, re.S)
    assert chart is not None
    assert ">0.000</text>" in chart.group(0)  # the zero bar is labelled, not invisible
    assert "All flip rates are 0" in html
    informative = _audit(informative=True)
    informative["robustness"]["noise"]["typos"]["flip_rate"] = 0.02
    assert "All flip rates are 0" not in render_report(informative)


def test_disparity_bars_have_an_axis_with_tick_labels() -> None:
    rows = [("equalized_odds_difference", 0.12, 0.05, 0.19), ("demographic_parity", 0.04, 0, 0.1)]
    chart = svg.interval_bars("disparities for race", rows, limit=0.1)
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', chart)
    assert ticks == ["0", "0.05", "0.1", "0.15", "0.2"]
    assert 'class="axis"' in chart
    assert re.findall(r'<text class="value"[^>]*>([^<]+)</text>', chart) == ["0.120", "0.040"]


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [(0.055, [0, 0.01, 0.02, 0.03, 0.04, 0.05]), (1.1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (0.0, [0.0])],
)
def test_nice_ticks(maximum: float, ticks: list[float]) -> None:
    assert svg.nice_ticks(maximum) == pytest.approx(ticks)


# ---------------------------------------------------------------------------------------------
# The predictions-file audit of a constant decision.


def test_a_constant_predictions_file_is_red_not_informative(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame(
        {
            "outcome": (rng.random(300) < 0.46).astype(int),
            "decision": 0,
            "race": rng.choice(["a", "b", "c"], 300, p=[0.6, 0.37, 0.03]),
        }
    )
    source = tmp_path / "decisions.csv"
    frame.to_csv(source, index=False)
    result = audit_predictions(
        source, label="outcome", groups=["race"], prediction="decision", out=tmp_path / "a"
    )
    written = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert written["informativeness"]["informative"] is False
    assert written["summary"]["informativeness"]["status"] == "red"
    assert written["summary"]["fairness"]["status"] == "grey"
    assert written["summary"]["fairness"]["reasons"][0] == NOT_MEANINGFUL
    small = written["summary"]["sample_size"]["reasons"]
    assert any(r.startswith("race: ") and "c n=" in r for r in small), small
    assert "Not informative: constant prediction" in result.report.read_text()


def test_the_training_flag_for_metrics_json_applies_the_same_rule() -> None:
    from ethos.training.baselines import informativeness, majority_baseline

    y, score = _data()
    probabilities = np.stack([1 - score, score], axis=1)
    majority = majority_baseline(y, y, ["no", "yes"])
    flag = informativeness(y, probabilities, ["no", "yes"], majority=majority)
    assert flag == {"informative": True, "reasons": []}
    constant = np.tile([0.6, 0.4], (len(y), 1))
    flag = informativeness(y, constant, ["no", "yes"], majority=majority)
    assert flag["informative"] is False
    assert flag["reasons"][0] == "constant prediction: every row is predicted 'no'"
