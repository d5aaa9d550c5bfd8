"""The informativeness constraint of the bundled policies, and the small groups that decide a
constraint (``small_group_warnings``), on hand-made documents (nothing trains)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ethos.governance.policy import bundled_policies, load_policy
from ethos.governance.sample_size import small_group_warnings
from ethos.governance.scorecard import score_run

MODEL_POLICIES = [n for n in bundled_policies() if load_policy(n).subject == "model"]
INFORMATIVE = "informativeness.informative"


def _group(count: int, base: float, selected: float, tpr: float, fpr: float) -> dict[str, Any]:
    return {
        "count": count,
        "base_rate": base,
        "selection_rate": selected,
        "tpr": tpr,
        "fpr": fpr,
        "ppv": 0.5,
        "used_for_disparities": True,
    }


def _documents(informative: bool | None) -> dict[str, Any]:
    """A run that would pass every bundled policy but for its informativeness."""
    groups = {
        "A": _group(400, 0.5, 0.45, 0.70, 0.20),
        "B": _group(300, 0.5, 0.46, 0.72, 0.21),
    }
    disparities = {
        name: {"value": value, "ci_low": value, "ci_high": value}
        for name, value in {
            "equalized_odds_difference": 0.02,
            "equal_opportunity_difference": 0.02,
            "demographic_parity_difference": 0.01,
            "predictive_parity_difference": 0.0,
            "disparate_impact_ratio": 0.98,
        }.items()
    }
    audit: dict[str, Any] = {
        "fairness": {
            attribute: {"groups": groups, "disparities": disparities, "min_group_size": 30}
            for attribute in ("race", "sex")
        },
        "calibration": {"overall": {"count": 700, "ece": {"uniform_15": 0.01}}},
        "robustness": {"max_flip_rate": 0.0},
        "privacy": {"membership_inference": {"auc": 0.5}},
        "explanations": {"completeness": {"max_gap": 0.0}},
        # what the qa-bias policy reads (a multiple-choice run's audit: ethos.audit.qa_bias)
        "qa_bias": {
            "accuracy": 0.9,
            "overall": {
                "ambiguous": {"accuracy": 0.95, "abs_bias": 0.5},
                "disambiguated": {"accuracy": 0.85, "abs_bias": 1.0},
            },
            "by_category": {"Age": {"ambiguous": {"abs_bias": 1.0}}},
        },
        # what the grounded-qa policy reads (a grounded run's audit: ethos.audit.grounding)
        "grounding": {
            "retrieval": {"recall@5": {"value": 0.99}, "mrr": {"value": 0.98}},
            "answers": {"retrieved_minus_gold": 0.0},
            "abstention": {
                "answered_accuracy": {"value": 0.9},
                "out_of_domain": {"abstained": 1.0},
            },
        },
        # what the generative policy reads (a causal-LM run's audit: ethos.audit.causal_run)
        "pii_leakage": {"share": 0.0, "sensitive": {"strings_reproduced": 0}},
        "memorisation": {"max_exposure_fraction": 0.1},
        "generation_bias": {
            "axes": {
                "gender_and_sex": {"refusal_gap": {"value": 0.0}, "ll_gap": {"per_token": 0.0}}
            }
        },
    }
    if informative is not None:
        audit["informativeness"] = {"informative": informative}
    metrics = {"test": {"accuracy": 0.9, "auroc": 0.95, "macro_f1": 0.9, "exact_match": 0.9}}
    return {"audit": audit, "metrics": metrics, "manifest": {"run_id": "r"}}


def test_every_bundled_model_policy_requires_an_informative_model() -> None:
    assert set(MODEL_POLICIES) == {
        "credit",
        "criminal-justice",
        "generative",
        "grounded-qa",
        "medical",
        "qa-bias",
    }
    for name in MODEL_POLICIES:
        [constraint] = [c for c in load_policy(name).constraints if c.metric == INFORMATIVE]
        assert (constraint.op, constraint.value, constraint.on_break) == ("==", 1, "fail")
        assert constraint.why
    genome = load_policy("genome-edit")
    assert genome.subject == "edit"
    assert all(c.metric != INFORMATIVE for c in genome.constraints)


@pytest.mark.parametrize("name", MODEL_POLICIES)
def test_a_model_that_is_not_informative_fails_even_when_all_else_is_perfect(name: str) -> None:
    policy = load_policy(name)
    assert score_run(policy, _documents(informative=True)).decision == "PASS"
    card = score_run(policy, _documents(informative=False))
    assert card.decision == "FAIL"
    [broken] = [c for c in card.constraints if c.status == "broken"]
    assert broken.metric == INFORMATIVE and broken.value == 0.0
    assert any("constraint broken: informative model" in r for r in card.reasons)


@pytest.mark.parametrize("name", MODEL_POLICIES)
def test_an_audit_without_the_check_does_not_pass_silently(name: str) -> None:
    card = score_run(load_policy(name), _documents(informative=None))
    assert card.decision == "REVIEW"
    [missing] = [c for c in card.constraints if c.metric == INFORMATIVE]
    assert missing.status == "missing"
    assert any("constraint missing: informative model" in r for r in card.reasons)


# ---------------------------------------------------------------------------------------------
# small_group_warnings


def _small_audit() -> dict[str, Any]:
    """race: A is large; B has 40 rows but 4 positives; C (3 rows) is left out.
    Equalized odds = max(TPR gap 0.70 - 0.25 = 0.45, FPR gap 0.02) comes from TPR, A vs B."""
    groups = {
        "A": _group(400, 0.5, 0.45, 0.70, 0.20),
        "B": _group(40, 0.1, 0.22, 0.25, 0.22),
        "C": {**_group(3, 0.67, 1.0, 1.0, 1.0), "used_for_disparities": False},
    }
    sex = {
        "F": _group(220, 0.45, 0.4, 0.6, 0.2),
        "M": _group(220, 0.45, 0.4, 0.62, 0.21),
    }
    eod = {"value": 0.45, "ci_low": 0.1, "ci_high": 0.6}
    small_eod = {"value": 0.02, "ci_low": 0.0, "ci_high": 0.05}
    return {
        "fairness": {
            "race": {
                "groups": groups,
                "disparities": {"equalized_odds_difference": eod},
                "min_group_size": 5,
            },
            "sex": {"groups": sex, "disparities": {"equalized_odds_difference": small_eod}},
        },
        "calibration": {
            "overall": {"count": 443, "ece": {"uniform_15": 0.03}},
            "groups": {"race": {"B": {"count": 12, "ece": {"uniform_15": 0.2}}}},
        },
    }


EOD_RACE = "fairness.race.disparities.equalized_odds_difference.value"


def test_the_group_behind_a_broken_constraint_is_named_with_its_rows() -> None:
    policy = load_policy("criminal-justice")
    audit = _small_audit()
    documents = {"audit": audit, "metrics": {"test": {"auroc": 0.7}}, "manifest": {}}
    card = score_run(policy, documents)
    warnings = small_group_warnings(card, audit)
    assert len(warnings) == 1, warnings
    [message] = warnings
    assert message.startswith("constraint 'equalized odds across race' (broken): ")
    assert "is decided by race=B (n=40) (tpr 0.250 from 4 positives)" in message
    assert "race=A" not in message and "race=C" not in message  # large, and left out


def test_a_holding_constraint_and_a_star_path_are_traced_too() -> None:
    audit = _small_audit()
    constraints = [
        {
            "label": "eo",
            "metric": "fairness.*.disparities.equalized_odds_difference.value",
            "op": "<=",
            "value": 0.5,
            "status": "holds",
        },
    ]
    [message] = small_group_warnings(constraints, audit)
    assert message.startswith("constraint 'eo' (holds): fairness.race.disparities")  # the worst
    assert "race=B (n=40)" in message


def test_nothing_is_said_about_large_groups_metrics_or_missing_values() -> None:
    audit = _small_audit()
    constraints = [
        {
            "label": "sex",
            "metric": "fairness.sex.disparities.equalized_odds_difference.value",
            "op": "<=",
            "value": 0.1,
        },
        {"label": "auroc", "metric": "metrics.test.auroc", "op": ">=", "value": 0.6},
        {"label": "gone", "metric": EOD_RACE, "op": "<=", "value": 0.1, "status": "missing"},
        {
            "label": "overall",
            "metric": "calibration.overall.ece.uniform_15",
            "op": "<=",
            "value": 0.1,
        },
    ]
    assert small_group_warnings(constraints, audit) == []


def test_a_lower_floor_silences_and_a_higher_one_adds() -> None:
    audit = _small_audit()
    constraints = [{"label": "eo", "metric": EOD_RACE, "op": "<=", "value": 0.1}]
    assert small_group_warnings(constraints, audit, floor=4) == []
    assert len(small_group_warnings(constraints, audit, floor=201)) == 2  # A's 200 positives too


def test_a_group_rate_and_a_group_calibration_path() -> None:
    audit = _small_audit()
    constraints = [
        {"label": "fpr", "metric": "fairness.race.groups.B.fpr", "op": "<=", "value": 0.3},
        {
            "label": "ece",
            "metric": "calibration.groups.race.B.ece.uniform_15",
            "op": "<=",
            "value": 0.1,
        },
    ]
    fpr, ece = small_group_warnings(constraints, audit, floor=40)
    assert "race=B (n=40) (fpr 0.220 from 36 negatives)" in fpr
    assert "is decided by 'B' (computed on 12 rows)" in ece


def test_a_multiclass_worst_case_is_traced_to_its_class() -> None:
    audit = _small_audit()
    race = audit["fairness"]["race"]
    by_class = copy.deepcopy(race)
    race["classes"] = {"high": by_class, "low": copy.deepcopy(audit["fairness"]["sex"])}
    race["groups"] = {g: {"count": r["count"], "tpr": None} for g, r in race["groups"].items()}
    constraints = [{"label": "eo", "metric": EOD_RACE, "op": "<=", "value": 0.1}]
    [message] = small_group_warnings(constraints, audit)
    assert "race=B (n=40) (tpr 0.250 from 4 positives)" in message


def test_a_policy_is_accepted_as_well() -> None:
    assert small_group_warnings(load_policy("criminal-justice"), _small_audit()) == [
        m.replace(" (broken)", "")
        for m in small_group_warnings(
            score_run(
                load_policy("criminal-justice"),
                {"audit": _small_audit(), "metrics": {}, "manifest": {}},
            ),
            _small_audit(),
        )
    ]
