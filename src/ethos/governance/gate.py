"""`ethos gate`: score a run against a policy, decide, write decision.json, record it.

Exit codes make the gate a CI step: 0 PASS, 1 FAIL, 3 REVIEW, 4 INSUFFICIENT_EVIDENCE (label more
examples: the decision says how many, per group), 2 a user error (bad policy, run without an
audit). The decision is written into the run directory atomically and appended to the
ledger with the digests that tie it to exactly this model, data, config and audit.
"""

from __future__ import annotations

import getpass
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ethos.errors import EthosError
from ethos.governance.decision_record import DECISION_KIND, decision_sha256, policy_basis
from ethos.governance.policy import Policy, bundled_policies, load_policy, policy_text
from ethos.governance.sample_size import small_group_warnings
from ethos.governance.scorecard import Scorecard, score_run
from ethos.governance.sensitivity import weight_sensitivity
from ethos.rundir import RunDir

EXIT_CODES = {"PASS": 0, "FAIL": 1, "REVIEW": 3, "INSUFFICIENT_EVIDENCE": 4}


@dataclass(frozen=True)
class GateResult:
    scorecard: Scorecard
    decision: dict[str, Any]
    path: Path

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.scorecard.decision]


def run_documents(run: RunDir) -> tuple[dict[str, Any], str]:
    """The run's metrics, manifest and audit, and the sha256 of audit.json."""
    audit = run.audit()
    digest = run.audit_sha256()
    if audit is None or digest is None:
        raise EthosError(
            f"{run.path} has no audit yet ({run.audit_path.relative_to(run.path)} is missing)",
            hint=f"run: ethos audit {run.path}",
        )
    documents = {"metrics": run.metrics, "manifest": run.manifest, "audit": audit}
    return documents, digest


def policy_sha256(source: str | Path) -> str:
    """sha256 of the policy text (a bundled policy by its packaged file)."""
    if str(source) in bundled_policies() and not Path(source).exists():
        return hashlib.sha256(policy_text(str(source)).encode()).hexdigest()
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()


def gate_run(
    run: RunDir,
    policy_source: str | Path,
    *,
    ledger_url: str | None = None,
    actor: str | None = None,
    record: bool = True,
    why: str | None = None,
) -> GateResult:
    """Decide PASS / REVIEW / FAIL / INSUFFICIENT_EVIDENCE for ``run``, write and record it.

    A recorded decision is the run's decision: decision.json is its receipt, bound to the ledger
    entry by its digest (:mod:`ethos.governance.decision_record`). A policy other than the run's
    own needs ``why``, which is recorded. With ``record=False`` the decision is advisory: it is
    written to decision.advisory.json, leaving the recorded decision (and what may be served)
    untouched.
    """
    policy: Policy = load_policy(policy_source, subject="model")
    documents, audit_digest = run_documents(run)
    card = score_run(policy, documents)
    manifest = documents["manifest"]
    decision: dict[str, Any] = {
        "run_id": manifest["run_id"],
        "created_utc": datetime.now(UTC).isoformat(),
        "policy_source": str(policy_source),
        "policy_sha256": policy_sha256(policy_source),
        "audit_sha256": audit_digest,
        **card.to_dict(),
        "sensitivity": [s.to_dict() for s in weight_sensitivity(card)],
        # Which constraints rest on groups too small for their rates to mean much.
        "small_group_warnings": small_group_warnings(card, documents["audit"]),
    }
    if not record:
        decision["advisory"] = "not recorded (ethos gate --no-record): cannot be served or approved"
        return GateResult(card, decision, run.write_document(run.advisory_decision_path, decision))
    from ethos.governance.ledger import Ledger

    with Ledger.open(ledger_url) as ledger:
        earlier = ledger.entries(run_id=manifest["run_id"], kind=DECISION_KIND)
        basis = policy_basis(run, decision["policy_sha256"], earlier, why)
        decision.update(basis)
        entry = ledger.append(
            kind=DECISION_KIND,
            actor=actor or current_actor(),
            **run.identity(),
            audit_digest=audit_digest,
            decision=card.decision,
            payload={
                "policy": policy.name,
                "policy_version": policy.version,
                "policy_sha256": decision["policy_sha256"],
                **basis,
                "welfare": round(card.welfare, 6),
                "threshold": policy.threshold,
                "reasons": card.reasons[:20],
                "examples_needed": {
                    c.label: c.examples_needed
                    for c in card.constraints
                    if c.status == "insufficient_evidence"
                },
                "decision_sha256": decision_sha256(decision),
            },
        )
    decision["ledger"] = {"url": ledger.url, "seq": entry.seq, "entry_hash": entry.entry_hash}
    target = run.write_document(run.decision_path, decision)
    refresh_card(run)
    return GateResult(card, decision, target)


def refresh_card(run: RunDir) -> None:
    """Rebuild the model card when the run has one, so it never shows a superseded decision."""
    from ethos.governance.card import write_card

    if run.has_card():
        write_card(run)


def current_actor() -> str:
    """Who a ledger entry is recorded for when no one is named: ``$ETHOS_ACTOR``, else the login
    name, else "unknown" (a bare container has no user entry: Python 3.11's ``getuser`` raises
    KeyError there, later versions OSError)."""
    try:
        return os.environ.get("ETHOS_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def render_tree(card: Scorecard) -> list[str]:
    """The scorecard as indented text lines: name, weight, score (and the metric value)."""
    lines: list[str] = []

    def walk(node: Any, depth: int) -> None:
        pad = "  " * depth
        if node.kind == "indicator":
            value = "missing" if node.value is None else f"{node.value:.4g}"
            lines.append(f"{pad}{node.name:<24} w={node.weight:.3f}  F={node.score:.3f}  ({value})")
        else:
            lines.append(f"{pad}{node.name:<24} w={node.weight:.3f}  S={node.score:.3f}")
            for child in node.children:
                walk(child, depth + 1)

    walk(card.tree, 0)
    return lines
