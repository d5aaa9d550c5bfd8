"""Approvals of REVIEW decisions, and `ethos run` end to end on a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from run_documents import VERDICT_POLICIES, governed_run

from cli_helpers import run_ethos
from ethos.errors import EthosError
from ethos.governance.approve import approve_run
from ethos.governance.gate import gate_run
from ethos.governance.ledger import Ledger
from ethos.rundir import RunDir


def decided_run(tmp: Path, decision: str, ledger: str) -> RunDir:
    """A run's documents gated to ``decision`` on the record in ``ledger``."""
    policy = VERDICT_POLICIES[decision]
    run = governed_run(tmp, policy, name=f"run-{decision.lower()}")
    assert gate_run(run, policy, ledger_url=ledger).decision["decision"] == decision
    return run


def test_review_is_approved_into_the_ledger(tmp_path: Path) -> None:
    ledger = str(tmp_path / "ledger.db")
    run = decided_run(tmp_path, "REVIEW", ledger)
    approval = approve_run(
        run, actor="Dr. A. Lee", note="subgroup errors reviewed", ledger_url=ledger
    )
    decided = json.loads((run.path / "decision.json").read_text())
    assert approval.record["approves_decision"] == decided["ledger"]["entry_hash"]
    written = json.loads((run.path / "approval.json").read_text())
    assert written["approved_by"] == "Dr. A. Lee"
    with Ledger.open(ledger) as opened:
        [entry] = opened.entries(run_id=run.manifest["run_id"], kind="approval")
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
    ledger = str(tmp_path / "ledger.db")
    run = decided_run(tmp_path, decision, ledger)
    with pytest.raises(EthosError, match=message):
        approve_run(run, actor=actor, note=note, ledger_url=ledger)
    assert not (run.path / "approval.json").exists()
    with Ledger.open(ledger) as opened:
        assert [e.kind for e in opened.entries()] == ["decision"]


def test_ethos_run_ends_with_decision_card_and_ledger(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "compas.yaml"
    config = yaml.safe_load(example.read_text())
    config["data"].update({"sample": 400, "min_group_size": 1})
    config["train"].update({"epochs": 1, "max_steps": 6, "batch_size": 16})
    config["output_dir"] = str(tmp_path / "runs")
    path = tmp_path / "compas-tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    ledger = tmp_path / "ledger.db"
    done = run_ethos("run", str(path), "--quiet", "--ledger", str(ledger), timeout=900)
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
    done = run_ethos("run", str(path))
    assert done.returncode == 2 and "neither a file nor a bundled policy" in done.stderr
    assert not (tmp_path / "r").exists()
