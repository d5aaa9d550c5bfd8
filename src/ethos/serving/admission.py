"""Whether a run may be served at all: the gate's decision, and a human's sign-off on a REVIEW.

Every fact here is read from the ledger, not from files in the run directory (which anyone who
can write the folder can edit). A FAIL broke a hard constraint of its policy and is never served.
A REVIEW is served only with a ledger approval of that very decision (``ethos approve``: the
approval names the decision's ledger hash, so a re-gated run needs a new one) or with
``--allow-review``, which is itself written to the ledger so that serving an unreviewed model
leaves a trace an auditor can find. A run that was never gated has no decision to honour and is
refused too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ethos.errors import EthosError
from ethos.governance.decision_record import UnrecordedDecision, recorded_decision
from ethos.governance.gate import current_actor
from ethos.rundir import RunDir


class NotServable(EthosError):
    """The run's governance record does not allow serving it."""


@dataclass(frozen=True)
class Admission:
    """Why this run may be served: its decision, and for a REVIEW who signed it off."""

    run_id: str
    decision: Literal["PASS", "REVIEW"]
    decision_id: str | None
    """The ledger hash of the gate's decision entry (what every prediction is answerable to)."""
    welfare: float | None
    threshold: float | None
    policy: str | None
    approved_by: str | None = None
    override_entry: str | None = None
    """Ledger hash of the ``serve.review_override`` entry when ``--allow-review`` was used."""

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "decision": self.decision,
            "decision_id": self.decision_id,
            "welfare": self.welfare,
            "threshold": self.threshold,
            "policy": self.policy,
            "approved_by": self.approved_by,
            "review_override_entry": self.override_entry,
        }


def admit(
    run: RunDir,
    *,
    allow_review: bool = False,
    ledger_url: str | None = None,
    override_entry: str | None = None,
) -> Admission:
    """Check the run's decision (and approval) against the ledger and return what serving will
    report about it.

    The decision is the one the ledger holds for the run (:func:`recorded_decision`, with the
    whole chain verified): a decision.json edited by hand, an advisory ``--no-record`` decision,
    a superseded one or one under an unjustified policy is refused, whatever it says.
    ``override_entry`` is the ledger hash of an ``--allow-review`` already recorded for this
    start (the CLI checks before uvicorn starts, the app again when it loads): it is reused, so
    one start is one ledger entry.
    """
    from ethos.governance.ledger import Ledger

    with Ledger.open(ledger_url) as ledger:
        try:
            recorded = recorded_decision(run, ledger, verify_chain=True)
        except UnrecordedDecision as exc:
            raise NotServable(f"not served: {exc.message}", hint=exc.hint) from None
    decision = recorded.decision
    common: dict[str, Any] = {
        "run_id": run.identity()["run_id"],
        "decision_id": recorded.entry_hash,
        "welfare": decision.get("welfare"),
        "threshold": decision.get("threshold"),
        "policy": decision.get("policy"),
    }
    if recorded.verdict == "PASS":
        return Admission(decision="PASS", **common)
    if recorded.verdict == "FAIL":
        reasons = "; ".join(str(r) for r in (decision.get("reasons") or [])[:2])
        raise NotServable(
            f"{run.path} failed its policy gate ({reasons or 'no reason recorded'}), "
            "and a FAIL is never served",
            hint="fix the model or the data and train again; a FAIL cannot be approved",
        )
    if recorded.verdict == "INSUFFICIENT_EVIDENCE":
        reasons = "; ".join(str(r) for r in (decision.get("reasons") or [])[:1])
        raise NotServable(
            f"{run.path} cannot be served: its gate found too little evidence to decide "
            f"({reasons or 'no reason recorded'})",
            hint="label the examples the decision asks for, audit and gate again; an "
            "INSUFFICIENT_EVIDENCE decision cannot be approved or overridden",
        )
    if recorded.verdict != "REVIEW":
        raise NotServable(f"{run.decision_path} holds no PASS, REVIEW or FAIL decision")
    if recorded.approval is not None:
        return Admission(decision="REVIEW", approved_by=recorded.approval.actor, **common)
    if not allow_review:
        raise NotServable(
            f"{run.path} needs a human review before it is served (its gate decided REVIEW, "
            f"ledger entry {recorded.entry_hash[:12]}, and the ledger holds no approval of it)",
            hint=f"ethos approve {run.path} --as NAME --note WHY, or serve with --allow-review "
            "(recorded in the ledger)",
        )
    entry = override_entry or _record_override(run, ledger_url)
    return Admission(decision="REVIEW", override_entry=entry, **common)


def _record_override(run: RunDir, ledger_url: str | None) -> str:
    from ethos.governance.ledger import Ledger

    with Ledger.open(ledger_url) as ledger:
        entry = ledger.append(
            kind="serve.review_override",
            actor=current_actor(),
            **run.identity(),
            decision="REVIEW",
            payload={"note": "served with --allow-review before a recorded approval"},
        )
    return entry.entry_hash
