"""Every way a user found to serve or approve a model its policy failed is refused.

Reported bypasses (issue 22): (a) a FAIL run re-gated under a lenient hand-written policy with
``--no-record``, then approved (the approval recorded ``approves_decision: null``) and served as
"REVIEW, approved"; (b) a copy of a FAIL run with decision.json edited to PASS, served as PASS.
The gate reads only the run's documents, so these runs are documents alone (no model); each case
runs on SQLite and on a real PostgreSQL server, and the ledger still verifies afterwards.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from ledger_helpers import set_column
from run_documents import FAIL_POLICY, PASS_POLICY, REVIEW_POLICY, governed_run

from cli_helpers import run_ethos
from ethos.errors import EthosError
from ethos.governance.approve import approve_run
from ethos.governance.decision_record import (
    POLICY_JUSTIFIED,
    UnrecordedDecision,
    governance_warning,
    recorded_decision,
)
from ethos.governance.gate import gate_run
from ethos.governance.ledger import Ledger
from ethos.rundir import RunDir
from ethos.serving.admission import NotServable, admit


def decision_of(run: RunDir) -> dict[str, Any]:
    return dict(json.loads((run.path / "decision.json").read_text()))


def write_decision(run: RunDir, decision: dict[str, Any]) -> None:
    (run.path / "decision.json").write_text(json.dumps(decision))


def test_failed_run_regated_leniently_without_record_is_not_approved_or_served(
    tmp_path: Path, ledger_url: str
) -> None:
    """Bypass (a): the advisory decision lands beside the recorded FAIL, never over it."""
    run = governed_run(tmp_path, FAIL_POLICY)
    assert gate_run(run, FAIL_POLICY, ledger_url=ledger_url).decision["decision"] == "FAIL"
    recorded = decision_of(run)

    advisory = gate_run(run, REVIEW_POLICY, ledger_url=ledger_url, record=False)
    assert advisory.path.name == "decision.advisory.json"
    assert advisory.decision["decision"] == "REVIEW" and "ledger" not in advisory.decision
    assert decision_of(run) == recorded  # the recorded FAIL is untouched

    with pytest.raises(EthosError, match="failed its policy gate"):
        approve_run(run, actor="Dr. A. Lee", note="looks fine", ledger_url=ledger_url)
    with pytest.raises(NotServable, match="a FAIL is never served"):
        admit(run, ledger_url=ledger_url)

    # Promoting the advisory file by hand does not help: it was never recorded.
    shutil.copy(advisory.path, run.path / "decision.json")
    with pytest.raises(EthosError, match="never recorded in a ledger"):
        approve_run(run, actor="Dr. A. Lee", note="looks fine", ledger_url=ledger_url)
    with pytest.raises(NotServable, match="advisory only"):
        admit(run, allow_review=True, ledger_url=ledger_url)
    assert not (run.path / "approval.json").exists()

    with Ledger.open(ledger_url) as ledger:
        kinds = [e.kind for e in ledger.entries(run_id="run-id")]
        assert kinds == ["decision"]  # no approval, no override was ever recorded
        assert ledger.verify()


def test_another_policy_needs_a_recorded_reason(tmp_path: Path, ledger_url: str) -> None:
    run = governed_run(tmp_path, FAIL_POLICY)
    gate_run(run, FAIL_POLICY, ledger_url=ledger_url)
    with pytest.raises(EthosError, match="must give its reason on the record"):
        gate_run(run, PASS_POLICY, ledger_url=ledger_url)
    assert decision_of(run)["decision"] == "FAIL"

    why = "ethics board asked for the pilot policy (minute 2026-12-01)"
    justified = gate_run(run, PASS_POLICY, ledger_url=ledger_url, why=f"  {why} ")
    assert justified.decision["decision"] == "PASS"
    admitted = admit(run, ledger_url=ledger_url)
    assert (
        admitted.decision == "PASS"
        and admitted.decision_id == justified.decision["ledger"]["entry_hash"]
    )
    with Ledger.open(ledger_url) as ledger:
        newest = ledger.entries(run_id="run-id", kind="decision")[-1]
        assert newest.payload["policy_basis"] == POLICY_JUSTIFIED
        assert newest.payload["justification"] == why
        assert ledger.verify()


def test_edited_decision_in_a_copied_run_is_not_served(tmp_path: Path, ledger_url: str) -> None:
    """Bypass (b): a copy of a FAIL run with decision.json edited to PASS."""
    original = governed_run(tmp_path, FAIL_POLICY)
    gate_run(original, FAIL_POLICY, ledger_url=ledger_url)
    shutil.copytree(original.path, tmp_path / "copy")
    copy = RunDir.open(tmp_path / "copy")
    edited = decision_of(copy)
    edited["decision"] = "PASS"
    edited["reasons"] = []
    write_decision(copy, edited)
    with pytest.raises(NotServable, match="was changed after it was recorded"):
        admit(copy, ledger_url=ledger_url)
    assert "cannot be trusted" in str(governance_warning(copy, ledger_url))

    # Editing only a number keeps the verdict but changes the document: refused the same way.
    edited = decision_of(original)
    edited["welfare"] = 0.99
    write_decision(copy, edited)
    with pytest.raises(NotServable, match="was changed after it was recorded"):
        admit(copy, ledger_url=ledger_url)
    with Ledger.open(ledger_url) as ledger:
        assert ledger.verify()


def test_a_superseded_decision_cannot_be_restored(tmp_path: Path, ledger_url: str) -> None:
    run = governed_run(tmp_path, None)  # no configured policy: the first decision's is the run's
    gate_run(run, PASS_POLICY, ledger_url=ledger_url)
    old_pass = decision_of(run)
    with pytest.raises(EthosError, match="its first decision"):
        gate_run(run, FAIL_POLICY, ledger_url=ledger_url)
    gate_run(run, FAIL_POLICY, ledger_url=ledger_url, why="regulator's stricter policy applies")
    write_decision(run, old_pass)
    with pytest.raises(NotServable, match=r"holds an old decision \(PASS.*newest decision.*FAIL"):
        admit(run, ledger_url=ledger_url)


def test_review_is_served_only_with_a_ledger_approval(tmp_path: Path, ledger_url: str) -> None:
    run = governed_run(tmp_path, REVIEW_POLICY)
    decided = gate_run(run, REVIEW_POLICY, ledger_url=ledger_url).decision
    # A hand-written approval.json naming the right decision is not an approval.
    forged = {"approved_by": "nobody", "approves_decision": decided["ledger"]["entry_hash"]}
    (run.path / "approval.json").write_text(json.dumps(forged))
    with pytest.raises(NotServable, match="holds no approval"):
        admit(run, ledger_url=ledger_url)
    assert "awaits human review" in str(governance_warning(run, ledger_url))

    approval = approve_run(
        run, actor="Dr. A. Lee", note="subgroups reviewed", ledger_url=ledger_url
    )
    assert approval.record["approves_decision"] == decided["ledger"]["entry_hash"]
    admitted = admit(run, ledger_url=ledger_url)
    assert admitted.decision == "REVIEW" and admitted.approved_by == "Dr. A. Lee"
    assert governance_warning(run, ledger_url) is None

    # A new decision needs a new approval.
    gate_run(run, REVIEW_POLICY, ledger_url=ledger_url)
    with pytest.raises(NotServable, match="holds no approval"):
        admit(run, ledger_url=ledger_url)
    with Ledger.open(ledger_url) as ledger:
        assert ledger.verify()


def test_a_changed_audit_or_model_voids_the_decision(tmp_path: Path, ledger_url: str) -> None:
    run = governed_run(tmp_path, PASS_POLICY)
    gate_run(run, PASS_POLICY, ledger_url=ledger_url)
    admit(run, ledger_url=ledger_url)
    audit = run.path / "audit" / "audit.json"
    audit.write_text(json.dumps({"calibration": {"edited": True}}))
    with pytest.raises(NotServable, match="audit changed after"):
        admit(run, ledger_url=ledger_url)
    gate_run(run, PASS_POLICY, ledger_url=ledger_url)
    manifest = json.loads((run.path / "manifest.json").read_text())
    manifest["model"]["weights_sha256"] = "x" * 64
    (run.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NotServable, match="model hash is not the one decided"):
        admit(run, ledger_url=ledger_url)


def test_a_decision_from_another_ledger_is_not_found(tmp_path: Path, ledger_url: str) -> None:
    run = governed_run(tmp_path, PASS_POLICY)
    gate_run(run, PASS_POLICY, ledger_url=str(tmp_path / "elsewhere.db"))
    with pytest.raises(NotServable, match="does not hold as a decision about this run"):
        admit(run, ledger_url=ledger_url)


def test_a_rewritten_ledger_row_is_caught(tmp_path: Path, ledger_url: str) -> None:
    """Editing the stored FAIL to PASS in the database (and decision.json to match) breaks the
    chain; serving verifies the chain before trusting any entry in it."""
    run = governed_run(tmp_path, FAIL_POLICY)
    seq = gate_run(run, FAIL_POLICY, ledger_url=ledger_url).decision["ledger"]["seq"]
    set_column(ledger_url, seq, "decision", "PASS")  # append-only triggers dropped first
    edited = decision_of(run)
    edited["decision"] = "PASS"
    write_decision(run, edited)
    with pytest.raises(NotServable, match="does not verify"):
        admit(run, ledger_url=ledger_url)
    with Ledger.open(ledger_url) as ledger, pytest.raises(UnrecordedDecision):
        recorded_decision(run, ledger)  # even without the chain walk: the entry's own hash


def test_never_gated_run_warns_and_is_refused(tmp_path: Path) -> None:
    run = governed_run(tmp_path, PASS_POLICY)
    assert "was never gated" in str(governance_warning(run, str(tmp_path / "l.db")))
    with pytest.raises(NotServable, match="never gated"):
        admit(run, ledger_url=str(tmp_path / "l.db"))


def test_cli_refuses_an_edited_decision_in_one_line(tmp_path: Path) -> None:
    ledger_url = str(tmp_path / "ledger.db")
    run = governed_run(tmp_path, FAIL_POLICY)
    gate_run(run, FAIL_POLICY, ledger_url=ledger_url)
    edited = decision_of(run)
    edited["decision"] = "REVIEW"
    write_decision(run, edited)
    for args in (
        ["serve", str(run.path), "--ledger", ledger_url, "--db", str(tmp_path / "s.db")],
        ["approve", str(run.path), "--as", "x", "--note", "y", "--ledger", ledger_url],
    ):
        done = run_ethos(*args)
        assert done.returncode == 2, done.stderr
        assert "was changed after it was recorded" in done.stderr
        assert "Traceback" not in done.stderr
    with Ledger.open(ledger_url) as ledger:
        assert [e.kind for e in ledger.entries()] == ["decision"]
        assert ledger.verify()


def test_card_follows_every_gate_and_approval(tmp_path: Path, ledger_url: str) -> None:
    """The card once still said FAIL after a re-gate to REVIEW (issue 22)."""
    from ethos.governance.card import write_card

    run = governed_run(tmp_path, FAIL_POLICY)
    gate_run(run, FAIL_POLICY, ledger_url=ledger_url)
    card = write_card(run)
    assert "Decision: **FAIL**" in card.markdown.read_text()
    why = "the board replaced the pilot policy"
    gate_run(run, REVIEW_POLICY, ledger_url=ledger_url, why=why)
    text = card.markdown.read_text()
    assert "Decision: **REVIEW**" in text and "Decision: **FAIL**" not in text
    assert why in text and "Not yet approved" in text
    assert "REVIEW" in card.html.read_text()
    approve_run(run, actor="Dr. A. Lee", note="subgroups reviewed", ledger_url=ledger_url)
    text = card.markdown.read_text()
    assert "Approved by Dr. A. Lee" in text and "Not yet approved" not in text
