"""A privacy claim held against its own audit: ``lower bound <= claimed epsilon`` in a policy.

The bundled medical policy carries ``privacy.dp_audit.epsilon_lower_bound <=
manifest.training.privacy.epsilon`` as a hard constraint that is ``not_applicable`` to runs
without canaries or without differential privacy, so it FAILs a run whose canaries refute its
epsilon (a broken privacy engine) and changes nothing for any other run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ethos.errors import ConfigError
from ethos.governance.policy import load_policy
from ethos.governance.scorecard import score_run

CLAIM = "privacy claim survives its audit"
PASSING: dict[str, Any] = {
    "audit": {
        "informativeness": {"informative": True},
        "fairness": {
            "race": {
                "disparities": {
                    "equal_opportunity_difference": {"value": 0.02},
                    "equalized_odds_difference": {"value": 0.03},
                }
            }
        },
        "calibration": {"overall": {"ece": {"uniform_15": 0.02}}},
        "robustness": {"max_flip_rate": 0.01},
        "privacy": {"membership_inference": {"auc": 0.5}},
    },
    "metrics": {"test": {"auroc": 0.85, "macro_f1": 0.8}},
    "manifest": {"training": {"privacy": {"epsilon": 1.0, "delta": 1e-5}}},
}
"""A private run's documents that pass the medical policy before any canary audit."""


def documents(lower_bound: float | None, *, private: bool = True) -> dict[str, Any]:
    found = copy.deepcopy(PASSING)
    if lower_bound is None:
        found["audit"]["privacy"]["dp_audit"] = {"applicable": False, "reason": "no canaries"}
    else:
        found["audit"]["privacy"]["dp_audit"] = {
            "applicable": True,
            "epsilon_lower_bound": lower_bound,
            "confidence": 0.95,
        }
    if not private:
        found["manifest"]["training"]["privacy"] = None
    return found


def constraint(card: Any) -> Any:
    return next(c for c in card.constraints if c.label == CLAIM)


def test_a_lower_bound_above_the_claimed_epsilon_fails_the_run() -> None:
    card = score_run(load_policy("medical"), documents(2.4))
    assert card.decision == "FAIL"
    found = constraint(card)
    assert found.status == "broken" and found.value == 2.4 and found.limit == 1.0
    assert (
        "privacy.dp_audit.epsilon_lower_bound = 2.4 (limit <= 1 = "
        "manifest.training.privacy.epsilon)" in found.detail
    )
    assert any(r.startswith(f"constraint broken: {CLAIM}") for r in card.reasons)
    assert card.to_dict()["constraints"][-1]["limit_metric"] == "manifest.training.privacy.epsilon"


def test_a_lower_bound_within_the_claim_holds() -> None:
    card = score_run(load_policy("medical"), documents(0.4))
    assert card.decision == "PASS", card.reasons
    assert constraint(card).status == "holds"


@pytest.mark.parametrize(
    "found",
    [
        documents(None),  # trained without canaries: the audit says not applicable
        documents(2.4, private=False),  # no claim to refute
        {**PASSING, "manifest": {"training": {"privacy": None}}},  # neither section nor claim
    ],
    ids=["no-canaries", "not-private", "not-private-no-section"],
)
def test_runs_without_canaries_or_privacy_are_not_held_to_it(found: dict[str, Any]) -> None:
    card = score_run(load_policy("medical"), found)
    assert card.decision == "PASS", card.reasons
    assert constraint(card).status == "not_applicable"
    assert "1 not applicable" in card.reasons[-1]
    assert not any(CLAIM in r for r in card.reasons[:-1])


def test_a_private_run_audited_without_the_section_is_sent_to_review() -> None:
    """Leaving the canary audit out (``--checks`` without it) is missing evidence: the gate
    cannot be passed by not running the audit."""
    card = score_run(load_policy("medical"), PASSING)
    assert card.decision == "REVIEW"
    assert constraint(card).status == "missing"
    assert any(CLAIM in r for r in card.reasons)


def test_without_when_missing_a_missing_limit_asks_for_review(tmp_path: Path) -> None:
    policy = tmp_path / "strict.yaml"
    policy.write_text(
        "name: strict\nthreshold: 0\nscore:\n  name: W\n  components:\n"
        "    - {name: auroc, metric: metrics.test.auroc, direction: higher, worst: 0.5, "
        "best: 0.9, weight: 1}\n"
        "constraints:\n"
        "  - metric: privacy.dp_audit.epsilon_lower_bound\n"
        '    op: "<="\n'
        "    value: manifest.training.privacy.epsilon\n"
    )
    card = score_run(load_policy(policy), documents(0.4, private=False))
    assert card.decision == "REVIEW"
    found = card.constraints[0]
    assert found.status == "missing" and "the limit metric" in found.detail
    assert found.label == (
        "privacy.dp_audit.epsilon_lower_bound <= manifest.training.privacy.epsilon"
    )


def test_a_limit_path_is_checked_when_the_policy_loads(tmp_path: Path) -> None:
    policy = tmp_path / "typo.yaml"
    policy.write_text(
        "name: typo\nthreshold: 0\nscore:\n  name: W\n  components:\n"
        "    - {name: auroc, metric: metrics.test.auroc, direction: higher, worst: 0.5, "
        "best: 0.9, weight: 1}\n"
        "constraints:\n"
        "  - {metric: privacy.dp_audit.epsilon_lower_bound, op: '<=', "
        "value: manifest.training.privacy.epsilonn}\n"
    )
    with pytest.raises(ConfigError, match="no metric is called 'epsilonn'") as info:
        load_policy(policy)
    assert "did you mean 'epsilon'" in str(info.value.hint)


def test_a_fixed_limit_is_recorded_as_before() -> None:
    card = score_run(load_policy("medical"), documents(0.4))
    fixed = next(c for c in card.to_dict()["constraints"] if c["label"] == "calibration")
    assert "limit_metric" not in fixed and fixed["limit"] == 0.05
