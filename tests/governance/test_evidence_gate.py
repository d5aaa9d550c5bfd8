"""INSUFFICIENT_EVIDENCE: a constraint whose interval contains its limit, under a policy that asks
for it, is neither passed nor failed; the gate says how many labelled examples per group would
settle it, and nothing downstream (serve, approve) treats it as a decision to act on."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_documents import governed_run
from scipy.stats import norm

from ethos.errors import EthosError
from ethos.governance.approve import approve_run
from ethos.governance.gate import EXIT_CODES, gate_run
from ethos.governance.policy import Policy
from ethos.governance.scorecard import score_run
from ethos.serving.admission import NotServable, admit

EOD = "audit.fairness.race.disparities.equalized_odds_difference.value"


def group(count: int, base_rate: float, tpr: float, fpr: float) -> dict[str, Any]:
    return {
        "count": count,
        "base_rate": base_rate,
        "selection_rate": base_rate * tpr + (1 - base_rate) * fpr,
        "tpr": tpr,
        "fpr": fpr,
        "used_for_disparities": True,
    }


AUDIT: dict[str, Any] = {
    "fairness": {
        "race": {
            "groups": {
                # TPR gap 0.70 - 0.55 = 0.15, FPR gap 0.30 - 0.20 = 0.10: TPR defines EOD
                "A": group(200, 0.5, 0.70, 0.30),
                "B": group(120, 0.4, 0.55, 0.20),
                "C": group(80, 0.45, 0.62, 0.25),
                "tiny": {**group(3, 0.3, 0.0, 1.0), "used_for_disparities": False},
            },
            "disparities": {
                "equalized_odds_difference": {"value": 0.15, "ci_low": 0.04, "ci_high": 0.27}
            },
        }
    }
}


def documents(audit: dict[str, Any] = AUDIT) -> dict[str, Any]:
    return {"metrics": {"test": {"accuracy": 0.7}}, "manifest": {"run_id": "r"}, "audit": audit}


def policy(limit: float, thin: str, **extra: Any) -> Policy:
    return Policy.model_validate(
        {
            "name": "evidence",
            "threshold": 0.0,
            "score": {
                "name": "W",
                "components": [
                    {
                        "name": "acc",
                        "metric": "metrics.test.accuracy",
                        "direction": "higher",
                        "worst": 0.0,
                        "best": 1.0,
                        "weight": 1.0,
                    }
                ],
            },
            "constraints": [{"metric": EOD, "op": "<=", "value": limit, "on_thin_evidence": thin}],
            **extra,
        }
    )


def with_interval(value: float, low: float, high: float) -> dict[str, Any]:
    audit = copy.deepcopy(AUDIT)
    audit["fairness"]["race"]["disparities"]["equalized_odds_difference"] = {
        "value": value,
        "ci_low": low,
        "ci_high": high,
    }
    return audit


@pytest.mark.parametrize(
    ("value", "low", "high", "thin", "decision"),
    [
        (0.15, 0.04, 0.27, "insufficient_evidence", "INSUFFICIENT_EVIDENCE"),  # holds, may not
        (0.25, 0.13, 0.36, "insufficient_evidence", "INSUFFICIENT_EVIDENCE"),  # breaks, may not
        (0.25, 0.21, 0.36, "insufficient_evidence", "FAIL"),  # breaks, surely
        (0.10, 0.02, 0.18, "insufficient_evidence", "PASS"),  # holds, surely
        (0.15, 0.04, 0.27, "review", "REVIEW"),  # today's behaviour: uncertain -> REVIEW
        (0.25, 0.13, 0.36, "review", "FAIL"),  # today's behaviour: a broken value fails
    ],
)
def test_decision_for_each_side_of_the_limit(
    value: float, low: float, high: float, thin: str, decision: str
) -> None:
    card = score_run(policy(0.2, thin), documents(with_interval(value, low, high)))
    assert card.decision == decision


def test_examples_needed_reproduce_the_two_proportion_margin_formula() -> None:
    """The groups are the two extremes of the rate that defines EOD (TPR: A at 0.70, B at
    0.55); each needs (z_{1-a/2} + z_power)^2 (p1 q1 + p2 q2 / r) / margin^2 positives (r the
    groups' current ratio of positives, Fleiss, Levin & Paik 2003), as labelled rows at its
    base rate."""
    card = score_run(policy(0.2, "insufficient_evidence"), documents())
    assert card.decision == "INSUFFICIENT_EVIDENCE"
    (result,) = card.constraints
    needs = {n["group"]: n for n in result.examples_needed or []}
    assert set(needs) == {"A", "B"} and {n["rate"] for n in needs.values()} == {"tpr"}
    z = norm.ppf(0.975) + norm.ppf(0.8)
    n_a, n_b = 100, 48  # positives: 200 x 0.5, 120 x 0.4
    margin = abs((0.70 - 0.55) - 0.2)
    required_a = z**2 * (0.70 * 0.30 + 0.55 * 0.45 / (n_b / n_a)) / margin**2
    required_b = required_a * n_b / n_a
    assert needs["A"]["required_denominator"] == math.ceil(required_a)
    assert needs["A"]["additional_examples"] == math.ceil((math.ceil(required_a) - n_a) / 0.5)
    assert needs["B"]["additional_examples"] == math.ceil((math.ceil(required_b) - n_b) / 0.4)
    assert needs["A"]["additional_examples"] > 0 and needs["B"]["additional_examples"] > 0
    text = card.reasons[0]
    assert text.startswith("insufficient evidence:") and "race=A: label about" in text
    # a group left out of the disparity is not in the estimate, but it is named, not dropped
    assert "tiny" not in {n["group"] for n in result.examples_needed or []}
    assert "left out of the comparison for too few rows: tiny (3 rows)" in text


def test_the_policy_sets_alpha_and_power() -> None:
    strict = score_run(
        policy(0.2, "insufficient_evidence", evidence={"alpha": 0.01, "power": 0.9}),
        documents(),
    )
    usual = score_run(policy(0.2, "insufficient_evidence"), documents())
    first = {
        n["group"]: n["additional_examples"] for n in strict.constraints[0].examples_needed or []
    }
    second = {
        n["group"]: n["additional_examples"] for n in usual.constraints[0].examples_needed or []
    }
    assert all(first[g] > second[g] for g in second)
    with pytest.raises(ValueError, match="power"):
        policy(0.2, "insufficient_evidence", evidence={"power": 0.3})


def test_a_metric_without_groups_still_says_what_is_missing() -> None:
    raw = policy(0.2, "insufficient_evidence").model_dump()
    raw["constraints"][0]["metric"] = "audit.calibration.overall.ece.value"
    audit = {"calibration": {"overall": {"ece": {"value": 0.18, "ci_low": 0.1, "ci_high": 0.3}}}}
    card = score_run(Policy.model_validate(raw), documents(audit))
    assert card.decision == "INSUFFICIENT_EVIDENCE"
    assert card.constraints[0].examples_needed == []
    assert "no per-group estimate" in card.reasons[0]


def write_policy(tmp: Path, limit: float) -> Path:
    raw = policy(limit, "insufficient_evidence").model_dump()
    path = tmp / "evidence.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_recorded_cannot_be_served_or_approved_and_the_ledger_has_the_examples(
    tmp_path: Path,
) -> None:
    policy_path = write_policy(tmp_path, 0.2)
    run = governed_run(tmp_path, policy_path)
    run.audit_path.write_text(json.dumps(AUDIT))
    ledger = str(tmp_path / "ledger.db")
    result = gate_run(run, policy_path, ledger_url=ledger)
    assert result.exit_code == EXIT_CODES["INSUFFICIENT_EVIDENCE"] == 4
    written = json.loads(run.decision_path.read_text())
    assert written["decision"] == "INSUFFICIENT_EVIDENCE"
    assert {n["group"] for n in written["constraints"][0]["examples_needed"]} == {"A", "B"}
    from ethos.governance.ledger import Ledger

    with Ledger.open(ledger) as opened:
        (entry,) = opened.entries(run_id=run.manifest["run_id"])
        assert entry.decision == "INSUFFICIENT_EVIDENCE"
        needed = entry.payload["examples_needed"]
        assert {n["group"] for n in next(iter(needed.values()))} == {"A", "B"}
    with pytest.raises(NotServable, match="too little evidence"):
        admit(run, allow_review=True, ledger_url=ledger)  # not even with --allow-review
    with pytest.raises(EthosError, match="nothing a reviewer can approve"):
        approve_run(run, actor="Dr. Reviewer", note="looks fine to me", ledger_url=ledger)
