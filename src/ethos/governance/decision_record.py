"""Which decision a run answers to: the one in the ledger, never a file that merely says so.

``decision.json`` is a receipt in the run directory; anyone who can write the folder can edit it.
Two bypasses were found that way: a FAIL run re-gated under a lenient hand-written policy with
``--no-record`` and then approved and served, and a copy of a FAIL run whose decision.json was
edited to PASS and served. So whatever acts on a decision (serving, approval, and the warnings of
``ethos predict`` and ``ethos export``) reads it through :func:`recorded_decision`, which holds the
receipt against the tamper-evident ledger:

* the receipt names a ledger ``decision`` entry of this run, and that entry is the run's newest
  decision (a later re-gate supersedes it; an old receipt cannot be restored);
* the entry's ``decision_sha256`` is the sha256 of the receipt's canonical JSON without its
  ``ledger`` field (:func:`decision_sha256`), so an edited receipt no longer matches;
* the entry's model, data, config and audit digests are those of the run directory as it is now;
* the policy is the run's configured one, or the one its first decision used when the config
  names none, or a deviation recorded with the reason (``ethos gate --policy X --why TEXT``);
* with ``verify_chain`` the whole chain re-verifies, so the entry itself cannot have been
  rewritten in the database.

An approval is likewise read from the ledger (an ``approval`` entry naming the decision's entry
hash), not from ``approval.json``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ethos.errors import EthosError
from ethos.governance.ledger_canonical import canonical_json, entry_hash
from ethos.rundir import RunDir, RunDirError

if TYPE_CHECKING:
    from ethos.governance.ledger import Ledger, LedgerEntry

DECISION_KIND = "decision"
APPROVAL_KIND = "approval"

#: How the policy a decision was made under relates to the run (stored in the ledger payload).
POLICY_CONFIGURED = "configured"  # the policy the run's config names
POLICY_FIRST = "first"  # the config names none; the run's first recorded decision chose this one
POLICY_JUSTIFIED = "justified"  # another policy, with the reason recorded (--why)


class UnrecordedDecision(EthosError):
    """The run's decision.json is not the decision the ledger holds for it."""


@dataclass(frozen=True)
class RecordedDecision:
    """A decision.json that matches the run's newest ledger decision."""

    decision: dict[str, Any]
    entry: LedgerEntry
    approval: LedgerEntry | None
    """The newest ledger approval of this very decision, if any (only a REVIEW has one)."""

    @property
    def verdict(self) -> str:
        return str(self.decision["decision"])

    @property
    def entry_hash(self) -> str:
        return self.entry.entry_hash


def decision_sha256(decision: Mapping[str, Any]) -> str:
    """sha256 of the decision document as written, without the ledger receipt it gets after.

    The document is round-tripped through JSON first so that the digest is the one a reader of
    decision.json recomputes (tuples become lists, and so on).
    """
    body = {key: value for key, value in decision.items() if key != "ledger"}
    written = json.loads(json.dumps(body, allow_nan=False, default=str))
    return hashlib.sha256(canonical_json(written)).hexdigest()


def read_decision(run: RunDir) -> dict[str, Any]:
    """The run's decision.json as a dict, or a clear error when it is missing or damaged."""
    try:
        value = run.decision()
    except RunDirError as exc:
        raise UnrecordedDecision(exc.message, hint=f"gate again: ethos gate {run.path}") from None
    if value is None:
        raise UnrecordedDecision(
            f"{run.path} has no policy decision (no {run.decision_path.name}): it was never gated",
            hint=f"run: ethos audit {run.path} && ethos gate {run.path}",
        )
    return value


def recorded_decision(
    run: RunDir, ledger: Ledger, *, verify_chain: bool = False
) -> RecordedDecision:
    """The run's decision, checked against ``ledger`` (see the module docstring for the rules).

    Raises :class:`UnrecordedDecision` naming the first rule that does not hold.
    """
    decision = read_decision(run)
    identity = run.identity()
    run_id = identity["run_id"]
    if decision.get("run_id") not in (None, run_id):
        raise UnrecordedDecision(
            f"{run.decision_path} decides run {decision.get('run_id')!r}, not this run ({run_id})",
            hint=f"gate this run: ethos gate {run.path}",
        )
    receipt = decision.get("ledger")
    if not isinstance(receipt, dict) or not receipt.get("entry_hash"):
        raise UnrecordedDecision(
            f"the decision in {run.decision_path} was never recorded in a ledger, so it is "
            "advisory only",
            hint=f"gate it on the record: ethos gate {run.path} (without --no-record)",
        )
    if verify_chain:
        report = ledger.verify()
        if not report.ok:
            raise UnrecordedDecision(
                f"the ledger {ledger.url} does not verify ({report.summary()}), so no decision "
                "in it can be trusted",
                hint="run `ethos ledger verify` and investigate before serving",
            )
    decisions = ledger.entries(run_id=run_id, kind=DECISION_KIND)
    entry = _entry_named(decisions, str(receipt["entry_hash"]), run, ledger.url)
    _check_entry(run, decision, entry, identity, newest=decisions[-1])
    return RecordedDecision(decision, entry, _approval_of(ledger, run_id, entry.entry_hash))


def _entry_named(decisions: list[LedgerEntry], wanted: str, run: RunDir, url: str) -> LedgerEntry:
    for entry in decisions:
        if entry.entry_hash == wanted:
            return entry
    raise UnrecordedDecision(
        f"{run.decision_path} names ledger entry {wanted[:12]}, which the ledger {url} does "
        f"not hold as a decision about this run",
        hint="pass the ledger it was recorded in (--ledger URL or $ETHOS_LEDGER_URL), or gate "
        f"the run again: ethos gate {run.path}",
    )


def _check_entry(
    run: RunDir,
    decision: Mapping[str, Any],
    entry: LedgerEntry,
    identity: Mapping[str, Any],
    *,
    newest: LedgerEntry,
) -> None:
    where = run.decision_path
    if entry_hash(entry.to_dict()) != entry.entry_hash:
        raise UnrecordedDecision(
            f"ledger entry #{entry.seq} (the decision {where} names) does not match its own hash",
            hint="the ledger was edited outside ethos; run `ethos ledger verify`",
        )
    if newest.entry_hash != entry.entry_hash:
        raise UnrecordedDecision(
            f"{where} holds an old decision ({entry.decision}, ledger entry #{entry.seq}); the "
            f"ledger's newest decision about this run is {newest.decision} (entry #{newest.seq})",
            hint=f"gate the run again to act on it: ethos gate {run.path}",
        )
    digest = entry.payload.get("decision_sha256")
    if digest is None:
        raise UnrecordedDecision(
            f"ledger entry #{entry.seq} was recorded by an older ethos that did not bind the "
            "decision document to the ledger",
            hint=f"gate the run again: ethos gate {run.path}",
        )
    if decision.get("decision") != entry.decision or digest != decision_sha256(decision):
        raise UnrecordedDecision(
            f"{where} was changed after it was recorded: it says {decision.get('decision')!r}, "
            f"the ledger recorded {entry.decision!r} (entry #{entry.seq}) for another document",
            hint=f"the recorded decision stands; to decide again: ethos gate {run.path}",
        )
    for field in ("model_hash", "dataset_fingerprint", "config_hash"):
        if getattr(entry, field) != identity.get(field):
            raise UnrecordedDecision(
                f"the run's {field.replace('_', ' ')} is not the one decided in ledger entry "
                f"#{entry.seq}: the run directory changed after the gate",
                hint=f"audit and gate the run as it is now: ethos audit {run.path} --force && "
                f"ethos gate {run.path}",
            )
    if run.audit_sha256() != entry.audit_digest:
        raise UnrecordedDecision(
            f"the run's audit changed after ledger entry #{entry.seq} decided on it",
            hint=f"gate the run on its current audit: ethos gate {run.path}",
        )
    basis = entry.payload.get("policy_basis")
    justified = basis == POLICY_JUSTIFIED and str(entry.payload.get("justification", "")).strip()
    if basis not in (POLICY_CONFIGURED, POLICY_FIRST) and not justified:
        raise UnrecordedDecision(
            f"ledger entry #{entry.seq} decided under a policy that is not the run's own, "
            "without a recorded reason",
            hint=f"gate under the run's policy, or give the reason: ethos gate {run.path} "
            "--policy X --why TEXT",
        )


def _approval_of(ledger: Ledger, run_id: str, decision_hash: str) -> LedgerEntry | None:
    approvals = [
        entry
        for entry in ledger.entries(run_id=run_id, kind=APPROVAL_KIND)
        if entry.payload.get("approves_decision") == decision_hash
    ]
    return approvals[-1] if approvals else None


def policy_basis(
    run: RunDir, policy_sha: str, earlier: list[LedgerEntry], why: str | None
) -> dict[str, Any]:
    """How a new decision's policy relates to the run, for its ledger payload; refuses a policy
    that is neither the run's own nor justified.

    The reference is the run config's policy; a config that names none takes the policy of the
    run's first recorded decision, so a FAIL cannot be re-gated away under a friendlier policy
    without a reason on the record.
    """
    reference = _reference_policy_sha(run, earlier)
    if reference is None:
        return {"policy_basis": POLICY_FIRST}
    if reference["sha256"] == policy_sha:
        return {"policy_basis": reference["basis"]}
    reason = (why or "").strip()
    if not reason:
        raise EthosError(
            f"this policy is not the one {run.path} is governed by ({reference['what']}); a "
            "decision under another policy must give its reason on the record",
            hint=f"gate under the run's policy (ethos gate {run.path}), or add --why "
            "'who asked for this policy and why' (recorded in the ledger)",
        )
    return {"policy_basis": POLICY_JUSTIFIED, "justification": reason}


def _reference_policy_sha(run: RunDir, earlier: list[LedgerEntry]) -> dict[str, str] | None:
    from ethos.governance.gate import policy_sha256

    configured = run.config.policy
    if configured is not None:
        try:
            sha = policy_sha256(configured)
        except OSError:
            sha = "(unreadable)"
        return {
            "sha256": sha,
            "basis": POLICY_CONFIGURED,
            "what": f"its config names {Path(configured).name}",
        }
    for entry in earlier:
        recorded = entry.payload.get("policy_sha256")
        if isinstance(recorded, str):
            first = f"its first decision, entry #{entry.seq}, used {entry.payload.get('policy')}"
            return {"sha256": recorded, "basis": POLICY_FIRST, "what": first}
    return None


def governance_warning(run: RunDir, ledger_url: str | None = None) -> str | None:
    """One line for a command that uses a run's model outside serving (``ethos predict``,
    ``ethos export``) when the run may not be used for decisions; None when it may.

    These commands still work (an analyst may score a FAIL model to study it), but never in
    silence: a model that failed, awaits review, or has no recorded decision says so.
    """
    from ethos.governance.ledger import Ledger

    if not (run.decision_path).is_file():
        return (
            f"{run.path} was never gated: no policy decision stands behind this model "
            f"(ethos audit {run.path} && ethos gate {run.path})"
        )
    try:
        with Ledger.open(ledger_url) as ledger:
            recorded = recorded_decision(run, ledger)
    except EthosError as exc:
        return f"the run's decision cannot be trusted: {exc.message}"
    if recorded.verdict == "FAIL":
        reasons = "; ".join(str(r) for r in (recorded.decision.get("reasons") or [])[:2])
        return (
            f"{run.path} FAILED its policy gate ({reasons}): use its output for analysis only, "
            "not for decisions about people"
        )
    if recorded.verdict == "INSUFFICIENT_EVIDENCE":
        return (
            f"{run.path} has too little evidence for its gate to decide (INSUFFICIENT_EVIDENCE): "
            "use its output for analysis only until more labelled examples settle it"
        )
    if recorded.verdict == "REVIEW" and recorded.approval is None:
        return (
            f"{run.path} awaits human review (its gate decided REVIEW and nobody has approved "
            f"it: ethos approve {run.path} --as NAME --note WHY)"
        )
    return None
