"""Whether a run may be served at all: the gate's decision, and a human's sign-off on a REVIEW.

A FAIL broke a hard constraint of its policy and is never served. A REVIEW is served only with a
recorded approval of that very decision (``ethos approve``: the approval names the decision's
ledger hash, so a re-gated run needs a new one) or with ``--allow-review``, which is itself written
to the ledger so that serving an unreviewed model leaves a trace an auditor can find. A run that
was never gated has no decision to honour and is refused too.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ethos.errors import EthosError
from ethos.governance.approve import APPROVAL_FILE
from ethos.governance.gate import DECISION_FILE
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


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotServable(
            f"{path} cannot be read as the run's {what}: {exc}",
            hint="the run directory is damaged or was edited; gate the run again",
        ) from None
    if not isinstance(value, dict):
        raise NotServable(f"{path} is not a {what} (expected a JSON object)")
    return value


def admit(
    run: RunDir,
    *,
    allow_review: bool = False,
    ledger_url: str | None = None,
    override_entry: str | None = None,
) -> Admission:
    """Check the run's decision (and approval) and return what serving will report about it.

    ``override_entry`` is the ledger hash of an ``--allow-review`` already recorded for this
    start (the CLI checks before uvicorn starts, the app again when it loads): it is reused, so
    one start is one ledger entry.
    """
    manifest = run.manifest
    run_id = str(manifest.get("run_id"))
    decision_path = run.path / DECISION_FILE
    if not decision_path.is_file():
        raise NotServable(
            f"{run.path} has no policy decision, and an ungated model is not served",
            hint=f"run: ethos audit {run.path} && ethos gate {run.path}",
        )
    decision = _read_json(decision_path, "decision")
    if decision.get("run_id") not in (None, run_id):
        raise NotServable(
            f"{decision_path} decides run {decision.get('run_id')!r}, not this run ({run_id})",
            hint="gate this run again",
        )
    verdict = decision.get("decision")
    decision_id = (decision.get("ledger") or {}).get("entry_hash")
    common: dict[str, Any] = {
        "run_id": run_id,
        "decision_id": decision_id,
        "welfare": decision.get("welfare"),
        "threshold": decision.get("threshold"),
        "policy": decision.get("policy"),
    }
    if verdict == "PASS":
        return Admission(decision="PASS", **common)
    if verdict == "FAIL":
        reasons = "; ".join(str(r) for r in (decision.get("reasons") or [])[:2])
        raise NotServable(
            f"{run.path} failed its policy gate ({reasons or 'no reason recorded'}), "
            "and a FAIL is never served",
            hint="fix the model or the data and train again; a FAIL cannot be approved",
        )
    if verdict != "REVIEW":
        raise NotServable(f"{decision_path} holds no PASS, REVIEW or FAIL decision ({verdict!r})")
    approval_path = run.path / APPROVAL_FILE
    if approval_path.is_file():
        approval = _read_json(approval_path, "approval")
        if approval.get("approves_decision") == decision_id:
            return Admission(decision="REVIEW", approved_by=approval.get("approved_by"), **common)
        if not allow_review:
            raise NotServable(
                f"{approval_path} approves an earlier decision, not the current REVIEW "
                f"({str(decision_id)[:12]})",
                hint=f"ethos approve {run.path} --as NAME --note WHY, or serve with --allow-review",
            )
    if not allow_review:
        raise NotServable(
            f"{run.path} needs a human review before it is served (its gate decided REVIEW)",
            hint=f"ethos approve {run.path} --as NAME --note WHY, or serve with --allow-review "
            "(recorded in the ledger)",
        )
    entry = override_entry or _record_override(run, ledger_url)
    return Admission(decision="REVIEW", override_entry=entry, **common)


def _record_override(run: RunDir, ledger_url: str | None) -> str:
    from ethos.governance.ledger import Ledger

    manifest = run.manifest
    try:
        actor = getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        actor = "unknown"
    with Ledger.open(ledger_url) as ledger:
        entry = ledger.append(
            kind="serve.review_override",
            actor=actor,
            run_id=manifest.get("run_id"),
            dataset_fingerprint=(manifest.get("data") or {}).get("fingerprint"),
            config_hash=manifest.get("config_hash"),
            model_hash=(manifest.get("model") or {}).get("weights_sha256"),
            decision="REVIEW",
            payload={"note": "served with --allow-review before a recorded approval"},
        )
    return entry.entry_hash
