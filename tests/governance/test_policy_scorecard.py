"""Policy, scorecard, decision rule and weight sensitivity, against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from cli_helpers import run_ethos
from ethos.errors import ConfigError
from ethos.governance.policy import Policy, bundled_policies, load_policy
from ethos.governance.scorecard import score_run
from ethos.governance.sensitivity import weight_sensitivity

DOCUMENTS: dict[str, Any] = {
    "metrics": {"test": {"accuracy": 0.70, "auroc": 0.74}},
    "manifest": {"run_id": "r1"},
    "audit": {
        "fairness": {
            "race": {
                "disparities": {
                    "equalized_odds_difference": {"value": 0.12, "ci_low": 0.05, "ci_high": 0.19}
                }
            },
            "sex": {
                "disparities": {
                    "equalized_odds_difference": {"value": 0.04, "ci_low": 0.01, "ci_high": 0.08}
                }
            },
        },
        "calibration": {"overall": {"ece": {"uniform_15": 0.03}}},
        "robustness": {"max_flip_rate": 0.02},
    },
}

THREE_LEVELS: dict[str, Any] = {
    "name": "three-levels",
    "threshold": 0.5,
    "score": {
        "name": "W",
        "components": [
            {
                "name": "accuracy",
                "metric": "metrics.test.accuracy",
                "direction": "higher",
                "worst": 0.5,
                "best": 0.9,
                "weight": 0.4,
            },
            {
                "name": "ethics",
                "weight": 0.6,
                "components": [
                    {
                        "name": "fairness",
                        "weight": 0.5,
                        "components": [
                            {
                                "name": "eod",
                                "metric": "fairness.*.disparities.equalized_odds_difference.value",
                                "direction": "lower",
                                "worst": 0.3,
                                "best": 0.0,
                                "weight": 0.75,
                            },
                            {
                                "name": "auroc",
                                "metric": "metrics.test.auroc",
                                "direction": "higher",
                                "worst": 0.5,
                                "best": 1.0,
                                "weight": 0.25,
                            },
                        ],
                    },
                    {
                        "name": "calibration",
                        "metric": "calibration.overall.ece.uniform_15",
                        "direction": "lower",
                        "worst": 0.1,
                        "best": 0.0,
                        "weight": 0.3,
                    },
                    {
                        "name": "robustness",
                        "metric": "robustness.max_flip_rate",
                        "direction": "lower",
                        "worst": 0.1,
                        "best": 0.0,
                        "weight": 0.2,
                    },
                ],
            },
        ],
    },
}


def policy(raw: dict[str, Any] | None = None, **changes: Any) -> Policy:
    return Policy.model_validate({**(raw or THREE_LEVELS), **changes})


def test_three_level_scorecard_gives_the_hand_computed_w() -> None:
    card = score_run(policy(), DOCUMENTS)
    # accuracy: (0.70 - 0.5) / 0.4 = 0.5
    # eod: worst case over race (0.12) and sex (0.04) = 0.12 -> (0.12 - 0.3) / -0.3 = 0.6
    # auroc: (0.74 - 0.5) / 0.5 = 0.48;  fairness = 0.75 * 0.6 + 0.25 * 0.48 = 0.57
    # calibration: (0.03 - 0.1) / -0.1 = 0.7;  robustness: (0.02 - 0.1) / -0.1 = 0.8
    # ethics = 0.5 * 0.57 + 0.3 * 0.7 + 0.2 * 0.8 = 0.655
    # W = 0.4 * 0.5 + 0.6 * 0.655 = 0.593
    assert card.welfare == pytest.approx(0.593, abs=1e-12)
    fairness = card.tree.children[1].children[0]
    assert fairness.score == pytest.approx(0.57, abs=1e-12)
    assert (
        fairness.children[0].resolved
        == "audit.fairness.race.disparities.equalized_odds_difference.value"
    )
    assert card.decision == "PASS"


def test_scores_clip_to_zero_and_one() -> None:
    documents = json.loads(json.dumps(DOCUMENTS))
    documents["metrics"]["test"]["accuracy"] = 0.99
    documents["audit"]["robustness"]["max_flip_rate"] = 0.5
    card = score_run(policy(), documents)
    assert card.tree.children[0].score == 1.0
    assert card.tree.children[1].children[2].score == 0.0


def constrained(*constraints: dict[str, Any], threshold: float = 0.5) -> Policy:
    return policy(constraints=list(constraints), threshold=threshold)


EOD = "fairness.race.disparities.equalized_odds_difference.value"


@pytest.mark.parametrize(
    ("constraints", "threshold", "decision", "reason"),
    [
        ([{"metric": "metrics.test.auroc", "op": ">=", "value": 0.7}], 0.5, "PASS", "every"),
        ([], 0.6, "REVIEW", "below the threshold 0.6"),
        ([{"metric": EOD, "op": "<=", "value": 0.10}], 0.5, "FAIL", "constraint broken"),
        ([{"metric": EOD, "op": "<=", "value": 0.15}], 0.5, "REVIEW", "95% interval reaches 0.19"),
        ([{"metric": "privacy.epsilon", "op": "<=", "value": 8}], 0.5, "REVIEW", "missing"),
    ],
    ids=["pass", "below-threshold", "broken", "uncertain", "missing-metric"],
)
def test_each_decision_path(
    constraints: list[dict[str, Any]], threshold: float, decision: str, reason: str
) -> None:
    card = score_run(constrained(*constraints, threshold=threshold), DOCUMENTS)
    assert card.decision == decision
    assert any(reason in r for r in card.reasons), card.reasons


def test_broken_constraint_fails_even_with_a_perfect_score() -> None:
    card = score_run(
        constrained({"metric": EOD, "op": "<", "value": 0.12}, threshold=0.0), DOCUMENTS
    )
    assert card.decision == "FAIL"


def test_missing_indicator_scores_zero_and_asks_for_review() -> None:
    documents = json.loads(json.dumps(DOCUMENTS))
    del documents["audit"]["robustness"]
    card = score_run(policy(threshold=0.0), documents)
    assert card.decision == "REVIEW"
    assert card.tree.children[1].children[2].score == 0.0
    assert any("indicator missing" in r and "robustness" in r for r in card.reasons)


def brute_force_flip(p: Policy, path: str, documents: dict[str, Any]) -> float | None:
    """Smallest |relative change| of one weight (siblings rescaled) that flips the decision."""
    base = score_run(p, documents).decision
    raw = p.model_dump()

    def with_change(delta: float) -> str:
        changed = json.loads(json.dumps(raw))
        node = changed["score"]
        names = path.split("/")[1:]
        for name in names[:-1]:
            node = next(c for c in node["components"] if c["name"] == name)
        siblings = node["components"]
        target = next(c for c in siblings if c["name"] == names[-1])
        new = target["weight"] * (1 + delta)
        if not 0 <= new <= 1:
            return base
        scale = (1 - new) / (1 - target["weight"])
        for sibling in siblings:
            sibling["weight"] = new if sibling is target else sibling["weight"] * scale
        return score_run(Policy.model_validate(changed), documents).decision

    # scan outward in steps of 0.01 in both directions, then bisect the first flip found
    best: float | None = None
    for sign in (1.0, -1.0):
        previous = 0.0
        for step in np.arange(0.01, 3.0, 0.01):
            delta = sign * float(step)
            if with_change(delta) != base:
                low, high = previous, delta
                for _ in range(40):
                    middle = (low + high) / 2
                    low, high = (low, middle) if with_change(middle) != base else (middle, high)
                if best is None or abs(high) < abs(best):
                    best = high
                break
            previous = delta
    return best


@pytest.mark.parametrize("threshold", [0.58, 0.62])
def test_sensitivity_matches_brute_force(threshold: float) -> None:
    p = policy(threshold=threshold)
    card = score_run(p, DOCUMENTS)
    for entry in weight_sensitivity(card):
        expected = brute_force_flip(p, entry.path, DOCUMENTS)
        if expected is None:
            assert entry.relative_change is None, entry
        else:
            assert entry.relative_change is not None, entry
            assert entry.relative_change == pytest.approx(expected, abs=1e-6), entry


def test_sensitivity_says_weights_cannot_repair_a_broken_constraint() -> None:
    card = score_run(constrained({"metric": EOD, "op": "<=", "value": 0.1}), DOCUMENTS)
    assert all(s.relative_change is None for s in weight_sensitivity(card))


def write_policy(tmp: Path, raw: dict[str, Any]) -> Path:
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_bad_policies_are_clear_errors(tmp_path: Path) -> None:
    raw = json.loads(json.dumps(THREE_LEVELS))
    raw["score"]["components"][0]["weight"] = 0.5
    with pytest.raises(ConfigError, match=r"weights sum to 1\.1, not 1.*normalise: true"):
        load_policy(write_policy(tmp_path, raw))
    raw["score"]["normalise"] = True
    assert load_policy(write_policy(tmp_path, raw)).score.normalised_weights()[0] == pytest.approx(
        0.5 / 1.1
    )

    raw = json.loads(json.dumps(THREE_LEVELS))
    raw["constraints"] = [{"metric": EOD, "op": "=>", "value": 0.1}]
    with pytest.raises(ConfigError, match=r"operator '=>' is not one of <=, <, >=, >, ==, !="):
        load_policy(write_policy(tmp_path, raw))

    raw["constraints"] = [
        {
            "metric": "fairness.race.disparities.equalised_odds_difference.value",
            "op": "<=",
            "value": 0.1,
        }
    ]
    with pytest.raises(ConfigError, match=r"(?s)does not exist.*equalized_odds_difference"):
        load_policy(write_policy(tmp_path, raw))
    raw["constraints"] = [
        {
            "metric": "fairnes.race.disparities.equalized_odds_difference.value",
            "op": "<=",
            "value": 0.1,
        }
    ]
    with pytest.raises(ConfigError, match=r"(?s)no section .fairnes..*did you mean .fairness."):
        load_policy(write_policy(tmp_path, raw))

    raw = json.loads(json.dumps(THREE_LEVELS))
    raw["score"]["components"][0]["best"] = 0.1
    with pytest.raises(ConfigError, match="says higher is better, but best"):
        load_policy(write_policy(tmp_path, raw))
    with pytest.raises(ConfigError, match="did you mean 'medical'"):
        load_policy("medicall")


@pytest.mark.parametrize("name", ["credit", "criminal-justice", "medical"])
def test_bundled_policies_load_and_explain_themselves(name: str) -> None:
    assert name in bundled_policies()
    p = load_policy(name)
    assert p.constraints and all(c.why for c in p.constraints)
    from ethos.governance.policy import policy_text

    assert policy_text(name).startswith("# ethos policy:")


def fake_run(tmp: Path, audit: dict[str, Any]) -> Path:
    """A finished run's documents (the gate reads only these files)."""
    run = tmp / "run"
    (run / "audit").mkdir(parents=True)
    (run / "config.yaml").write_text("data: {source: compas}\n")
    manifest = {
        "run_id": "r1",
        "config_hash": "c" * 64,
        "data": {"fingerprint": "f" * 64},
        "model": {"weights_sha256": "w" * 64},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "metrics.json").write_text(json.dumps(DOCUMENTS["metrics"]))
    (run / "audit" / "audit.json").write_text(json.dumps(audit))
    return run


@pytest.mark.parametrize(
    ("threshold", "constraint", "thin", "code", "decision"),
    [
        (0.5, 0.2, "review", 0, "PASS"),
        (0.5, 0.1, "review", 1, "FAIL"),
        (0.9, 0.2, "review", 3, "REVIEW"),
        # race's EOD is 0.12 with interval [0.05, 0.19]: it cannot tell <= 0.15 from > 0.15
        (0.5, 0.15, "insufficient_evidence", 4, "INSUFFICIENT_EVIDENCE"),
    ],
)
def test_gate_cli_exit_codes_decision_file_and_ledger(
    tmp_path: Path, threshold: float, constraint: float, thin: str, code: int, decision: str
) -> None:
    run = fake_run(tmp_path, DOCUMENTS["audit"])
    raw = {
        **THREE_LEVELS,
        "threshold": threshold,
        "constraints": [{"metric": EOD, "op": "<=", "value": constraint, "on_thin_evidence": thin}],
    }
    ledger = tmp_path / "ledger.db"
    done = run_ethos(
        "gate", str(run), "--policy", str(write_policy(tmp_path, raw)), "--ledger", str(ledger)
    )
    assert done.returncode == code, done.stderr
    assert f"decision: {decision}" in done.stdout
    written = json.loads((run / "decision.json").read_text())
    assert written["decision"] == decision
    assert written["welfare"] == pytest.approx(0.593)
    from ethos.governance.ledger import Ledger

    with Ledger.open(ledger) as opened:
        entries = opened.entries(run_id="r1")
        assert [e.decision for e in entries] == [decision]
        assert entries[0].audit_digest == written["audit_sha256"]
        assert opened.verify()


def test_gate_user_errors_exit_2(tmp_path: Path) -> None:
    run = fake_run(tmp_path, DOCUMENTS["audit"])
    (run / "audit" / "audit.json").unlink()
    done = run_ethos("gate", str(run), "--policy", "medical", "--no-record")
    assert done.returncode == 2 and "no audit yet" in done.stderr
    assert not (run / "decision.json").exists()
