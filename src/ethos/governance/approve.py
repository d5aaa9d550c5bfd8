"""`ethos approve`: a named human's sign-off on a REVIEW decision, on the record.

Only a REVIEW can be approved: a PASS needs no sign-off and a FAIL cannot be overruled here (a
broken hard constraint means retraining or changing the policy, which is its own record). The
approval names the decision it approves by its ledger hash, so a later re-gate (a new decision)
is not covered by an old approval. :func:`append_approval` is the one way an approval enters
the ledger; gene-edit reviews (``ethos genome approve``) use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ethos.errors import EthosError
from ethos.rundir import RunDir

if TYPE_CHECKING:
    from ethos.governance.ledger import Ledger, LedgerEntry


@dataclass(frozen=True)
class Approval:
    path: Path
    record: dict[str, Any]


def check_signoff(actor: str, note: str) -> tuple[str, str]:
    """The approver's name and note, stripped; refuses either one empty."""
    actor = actor.strip()
    note = note.strip()
    if not actor:
        raise EthosError("an approval needs the approver's name", hint="--as 'Dr. A. Lee'")
    if not note:
        raise EthosError(
            "an approval needs a note saying why the review outcome is acceptable",
            hint="--note 'reviewed subgroup errors with the clinical lead; accepted because ...'",
        )
    return actor, note


def append_approval(
    ledger: Ledger,
    *,
    actor: str,
    note: str,
    run_id: str,
    approves_decision: str,
    policy: str | None,
    dataset_fingerprint: str | None = None,
    config_hash: str | None = None,
    model_hash: str | None = None,
    audit_digest: str | None = None,
) -> LedgerEntry:
    """Append an ``approval`` entry naming the REVIEW decision it approves by its entry hash."""
    actor, note = check_signoff(actor, note)
    return ledger.append(
        kind="approval",
        actor=actor,
        run_id=run_id,
        dataset_fingerprint=dataset_fingerprint,
        config_hash=config_hash,
        model_hash=model_hash,
        audit_digest=audit_digest,
        decision="approved",
        payload={"note": note, "approves_decision": approves_decision, "policy": policy},
    )


def approve_run(run: RunDir, *, actor: str, note: str, ledger_url: str | None = None) -> Approval:
    """Record ``actor``'s approval of the run's REVIEW decision (ledger + approval.json).

    The decision approved is the one the ledger holds (:func:`recorded_decision`): an advisory
    (``--no-record``) or hand-edited decision.json cannot be approved.
    """
    from ethos.governance.decision_record import recorded_decision
    from ethos.governance.gate import refresh_card
    from ethos.governance.ledger import Ledger

    actor, note = check_signoff(actor, note)
    with Ledger.open(ledger_url) as ledger:
        recorded = recorded_decision(run, ledger, verify_chain=True)
        decision = recorded.decision
        if recorded.verdict == "PASS":
            raise EthosError(f"{run.path} passed its policy gate; there is nothing to approve")
        if recorded.verdict == "INSUFFICIENT_EVIDENCE":
            raise EthosError(
                f"{run.path} has too little evidence to decide; there is nothing a reviewer can "
                "approve yet",
                hint="label the examples its decision.json asks for (examples_needed), then "
                "audit and gate again",
            )
        if recorded.verdict != "REVIEW":
            reasons = "; ".join(str(r) for r in (decision.get("reasons") or [])[:2])
            raise EthosError(
                f"{run.path} failed its policy gate ({reasons})",
                hint="a FAIL cannot be approved: fix the model or data and train again",
            )
        identity = run.identity()
        entry = append_approval(
            ledger,
            actor=actor,
            note=note,
            approves_decision=recorded.entry_hash,
            policy=decision.get("policy"),
            audit_digest=recorded.entry.audit_digest,
            **identity,
        )
        url = ledger.url
    record = {
        "run_id": identity["run_id"],
        "approved_by": actor,
        "note": note,
        "created_utc": datetime.now(UTC).isoformat(),
        "approves_decision": recorded.entry_hash,
        "ledger": {"url": url, "seq": entry.seq, "entry_hash": entry.entry_hash},
    }
    target = run.write_document(run.approval_path, record)
    refresh_card(run)
    return Approval(target, record)
