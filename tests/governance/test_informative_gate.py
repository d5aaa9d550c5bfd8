"""A run whose model predicts one class for every row, end to end: red "not informative" in
audit.json and report.html, FAIL under every bundled model policy, and named small groups.

The run is a real tiny COMPAS run (two optimizer steps) whose predictions.parquet is then
overwritten so that every row gets the majority class at the base rate: exactly what the
degenerate model of issue 22 did.
"""

from __future__ import annotations

import json

import pytest

from ethos import RunConfig
from ethos.audit.informativeness import NOT_MEANINGFUL
from ethos.audit.runner import audit_run
from ethos.governance.gate import gate_run
from ethos.governance.policy import bundled_policies, load_policy
from ethos.governance.sample_size import small_group_warnings
from ethos.rundir import PREDICTIONS, RunDir
from ethos.training import train

MODEL_POLICIES = [n for n in bundled_policies() if load_policy(n).subject == "model"]


@pytest.fixture(scope="module")
def constant_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    config = RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": 300, "min_group_size": 5},
            "model": {"max_length": 32},
            "train": {"epochs": 1, "batch_size": 16, "max_steps": 2},
            "output_dir": str(tmp_path_factory.mktemp("runs")),
        }
    )
    run = train(config, quiet=True)
    predictions = run.predictions()
    names = [c.removeprefix("prob_") for c in predictions.columns if c.startswith("prob_")]
    test = predictions[predictions["split"] == "test"]
    majority = str(test["label"].astype(str).value_counts().idxmax())
    rate = float((test["label"].astype(str) == majority).mean())
    predictions["predicted_label"] = majority
    for name in names:
        predictions[f"prob_{name}"] = rate if name == majority else (1 - rate) / (len(names) - 1)
    predictions.to_parquet(run.path / PREDICTIONS)
    audit_run(run, checks=["fairness", "calibration"])  # informativeness runs regardless
    return run


def test_audit_json_and_report_say_not_informative(constant_run: RunDir) -> None:
    audit = json.loads((constant_run.path / "audit" / "audit.json").read_text())
    section = audit["informativeness"]
    assert section["informative"] is False and section["constant_prediction"] is True
    assert section["majority"]["recorded"] is not None  # metrics.json's baseline was read
    assert audit["meta"]["checks"][0] == "informativeness"
    summary = audit["summary"]
    assert summary["informativeness"]["status"] == "red"
    for dimension in ("fairness", "calibration"):
        assert summary[dimension]["status"] == "grey"
        assert summary[dimension]["reasons"][0] == NOT_MEANINGFUL
    html = (constant_run.path / "audit" / "report.html").read_text()
    assert "id='not-informative'" in html and "Not informative: constant prediction" in html


@pytest.mark.parametrize("policy", MODEL_POLICIES)
def test_every_bundled_model_policy_fails_it(constant_run: RunDir, policy: str) -> None:
    result = gate_run(constant_run, policy, record=False)
    assert result.scorecard.decision == "FAIL" and result.exit_code == 1
    [informative] = [c for c in result.scorecard.constraints if c.label == "informative model"]
    assert informative.status == "broken" and informative.value == 0.0
    written = json.loads(result.path.read_text())  # advisory: record=False
    assert written["decision"] == "FAIL" and written["policy"] == policy


def test_small_groups_behind_its_constraints_are_named(constant_run: RunDir) -> None:
    audit = json.loads((constant_run.path / "audit" / "audit.json").read_text())
    card = gate_run(constant_run, "criminal-justice", record=False).scorecard
    warnings = small_group_warnings(card, audit)
    # about 45 test rows split by race: every race group that is compared is under 30 rows
    assert warnings and all("equalized odds across race" in w for w in warnings)
    compared = [
        g for g, row in audit["fairness"]["race"]["groups"].items() if row["used_for_disparities"]
    ]
    assert {w.split("decided by race=")[1].split(" (n=")[0] for w in warnings} <= set(compared)
    assert any(g in warnings[0] for g in compared)
    screen = audit["summary"]["sample_size"]
    assert screen["status"] == "amber" and any("n=" in r for r in screen["reasons"])
