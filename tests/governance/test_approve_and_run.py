"""Approvals of REVIEW decisions, and `ethos run` end to end on a tiny budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ethos.errors import EthosError
from ethos.governance.approve import approve_run
from ethos.governance.ledger import Ledger
from ethos.rundir import RunDir


def decided_run(tmp: Path, decision: str) -> RunDir:
    run = tmp / f"run-{decision.lower()}"
    run.mkdir(parents=True)
    manifest = {
        "run_id": run.name,
        "config_hash": "c" * 64,
        "data": {"fingerprint": "f" * 64},
        "model": {"weights_sha256": "w" * 64},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "decision.json").write_text(
        json.dumps(
            {
                "decision": decision,
                "reasons": ["W = 0.55 is below the threshold 0.6"],
                "policy": "credit",
                "audit_sha256": "a" * 64,
                "ledger": {"entry_hash": "e" * 64},
            }
        )
    )
    return RunDir.open(run)


def test_review_is_approved_into_the_ledger(tmp_path: Path) -> None:
    run = decided_run(tmp_path, "REVIEW")
    ledger = str(tmp_path / "ledger.db")
    approval = approve_run(
        run, actor="Dr. A. Lee", note="subgroup errors reviewed", ledger_url=ledger
    )
    assert approval.record["approves_decision"] == "e" * 64
    written = json.loads((run.path / "approval.json").read_text())
    assert written["approved_by"] == "Dr. A. Lee"
    with Ledger.open(ledger) as opened:
        [entry] = opened.entries(run_id=run.path.name, kind="approval")
        assert entry.actor == "Dr. A. Lee" and entry.decision == "approved"
        assert entry.payload["note"] == "subgroup errors reviewed"
        assert opened.verify()


@pytest.mark.parametrize(
    ("decision", "actor", "note", "message"),
    [
        ("PASS", "x", "y", "nothing to approve"),
        ("FAIL", "x", "y", "cannot be approved"),
        ("REVIEW", "  ", "y", "approver's name"),
        ("REVIEW", "x", "", "needs a note"),
    ],
)
def test_approval_refusals_write_nothing(
    tmp_path: Path, decision: str, actor: str, note: str, message: str
) -> None:
    run = decided_run(tmp_path, decision)
    ledger = tmp_path / "ledger.db"
    with pytest.raises(EthosError, match=message):
        approve_run(run, actor=actor, note=note, ledger_url=str(ledger))
    assert not (run.path / "approval.json").exists()
    assert not ledger.exists()


def test_ethos_run_ends_with_decision_card_and_ledger(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "compas.yaml"
    config = yaml.safe_load(example.read_text())
    config["data"].update({"sample": 400, "min_group_size": 1})
    config["train"].update({"epochs": 1, "max_steps": 6, "batch_size": 16})
    config["output_dir"] = str(tmp_path / "runs")
    path = tmp_path / "compas-tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    ledger = tmp_path / "ledger.db"
    done = subprocess.run(
        [sys.executable, "-m", "ethos", "run", str(path), "--quiet", "--ledger", str(ledger)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode in (0, 1, 3), done.stderr
    assert "decision: " in done.stdout and "card:" in done.stdout
    [run_dir] = (tmp_path / "runs").iterdir()
    decision = json.loads((run_dir / "decision.json").read_text())
    assert decision["policy"] == "criminal-justice"
    assert done.returncode == {"PASS": 0, "FAIL": 1, "REVIEW": 3}[decision["decision"]]
    card = (run_dir / "model" / "README.md").read_text()
    assert card.startswith("---") and decision["decision"] in card
    with Ledger.open(ledger) as opened:
        kinds = [e.kind for e in opened.entries(run_id=run_dir.name)]
        assert kinds == ["run", "decision"]
        assert opened.verify()


def test_ethos_run_refuses_a_bad_policy_before_training(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{source: german}}\npolicy: nonesuch\noutput_dir: {tmp_path / 'r'}\n")
    done = subprocess.run(
        [sys.executable, "-m", "ethos", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "neither a file nor a bundled policy" in done.stderr
    assert not (tmp_path / "r").exists()
