"""`ethos run CONFIG`: train -> audit -> gate -> card -> ledger, one command, one summary.

Each stage is the same function its own command calls, so `ethos run` is only their order plus
the "run" ledger entry that records the trained model's identity before any judgement of it.

With a parent run (`ethos run --parent`, `ethos retrain`) the child is a change to govern, not a
new model: its manifest's ``lineage`` and its "run" ledger entry link the parent's newest entry
in the same ledger (its decision, else its run entry), so the chain that verifies the child also
proves what it came from; after the gate, `ethos diff` compares it with the parent on the
parent's test rows and the report and card show the changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ethos.config import RunConfig
from ethos.errors import EthosError
from ethos.rundir import RunDir

if TYPE_CHECKING:
    from ethos.governance.ledger import Ledger


@dataclass
class PipelineResult:
    run: RunDir
    decision: str
    welfare: float
    threshold: float
    exit_code: int
    report: Path
    card: Path
    broken: list[str]
    reasons: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    diff: Path | None = None
    """The child's diff.json, when the run had a parent."""


def run_pipeline(
    config: RunConfig,
    *,
    policy: str | None = None,
    ledger_url: str | None = None,
    actor: str | None = None,
    quiet: bool = False,
    log: Any = print,
    parent: RunDir | None = None,
    run_name: str | None = None,
    prepare: Callable[[RunDir], None] | None = None,
    lineage: dict[str, Any] | None = None,
) -> PipelineResult:
    """The whole governed run; ``log`` receives one line per stage.

    ``parent``: the run this one changes (see the module docstring); ``lineage`` adds what the
    caller knows about how (``ethos retrain``: the feedback and the replay); ``run_name`` and
    ``prepare`` are :func:`ethos.training.train`'s.

    Under `accelerate launch` every process trains its share; the main process alone records,
    audits, gates and writes the card, and the others return its result.
    """
    from ethos.governance.ledger import Ledger
    from ethos.governance.policy import load_policy
    from ethos.training import train
    from ethos.training.distributed import launched, shared_by_main

    source = policy or config.policy
    if source is None:
        raise EthosError(
            "no policy: the config names none and --policy was not given",
            hint="add `policy: criminal-justice` (or medical, credit, or a file) to the config",
        )
    # A bad policy (or one written for gene edits) should fail before an hour of training.
    load_policy(source, subject="model")
    if policy is not None:
        # The policy chosen for this run is its declared policy, saved with its config, so the
        # gate's decision is under the run's own policy (another policy later needs --why).
        declared = str(Path(policy).resolve()) if Path(policy).is_file() else policy
        config = config.model_copy(update={"policy": declared})
        source = declared
    with Ledger.open(ledger_url) as ledger:  # likewise an unreachable ledger
        if parent is not None:
            lineage = {**(lineage or {}), "parent": parent_link(parent, ledger)}
    processes = launched()
    if not processes.main:
        log = _silent
    seconds: dict[str, float] = {}
    steps = 6 if parent is not None else 5

    started = time.perf_counter()
    log(f"1/{steps} training ...")
    run = train(config, quiet=quiet, run_name=run_name, prepare=prepare, lineage=lineage)
    seconds["train"] = time.perf_counter() - started
    return shared_by_main(
        lambda: _govern(
            run,
            source,
            ledger_url=ledger_url,
            actor=actor,
            log=log,
            parent=parent,
            lineage=lineage,
            seconds=seconds,
        ),
        processes,
    )


def _govern(
    run: RunDir,
    source: str,
    *,
    ledger_url: str | None,
    actor: str | None,
    log: Any,
    parent: RunDir | None,
    lineage: dict[str, Any] | None,
    seconds: dict[str, float],
) -> PipelineResult:
    """Everything after training: the "run" entry, audit, gate, diff against a parent, card."""
    from ethos.audit.runner import audit_run
    from ethos.governance.card import write_card
    from ethos.governance.gate import current_actor, gate_run
    from ethos.governance.ledger import Ledger

    steps = 6 if parent is not None else 5
    manifest = run.manifest
    payload: dict[str, Any] = {"task": manifest["task"], "model": manifest["model"]["name"]}
    grounding = manifest.get("grounding")
    if grounding:  # the evidence the run answers from is part of what is recorded
        kb = grounding["knowledge_base"]
        payload["knowledge_base"] = {k: kb[k] for k in ("kb_sha256", "fingerprint", "path")}
    if parent is not None:
        assert lineage is not None  # it holds the parent's link, made above
        link = lineage["parent"]
        payload["parent"] = {"run_id": link["run_id"], "entry_hash": link["ledger_entry"]}
    with Ledger.open(ledger_url) as ledger:
        ledger.append(
            kind="run",
            actor=actor or current_actor(),
            run_id=manifest["run_id"],
            dataset_fingerprint=manifest["data"]["fingerprint"],
            config_hash=manifest["config_hash"],
            model_hash=manifest["model"]["weights_sha256"],
            payload=payload,
        )

    started = time.perf_counter()
    log(f"2/{steps} auditing {run.path} ...")
    audit = audit_run(run, replace=True)
    seconds["audit"] = time.perf_counter() - started

    started = time.perf_counter()
    log(f"3/{steps} gating against the policy ...")
    gate = gate_run(run, source, ledger_url=ledger_url, actor=actor)
    seconds["gate"] = time.perf_counter() - started

    diff_path = None
    if parent is not None:
        from ethos.governance.diff import write_diff

        started = time.perf_counter()
        log(f"4/{steps} comparing with the parent run {parent.path.name} ...")
        _, diff_path = write_diff(parent, run)
        seconds["diff"] = time.perf_counter() - started

    log(f"{steps - 1}/{steps} writing the model card ...")
    card = write_card(run)
    log(f"{steps}/{steps} recorded in the ledger")
    scorecard = gate.scorecard
    return PipelineResult(
        run=run,
        decision=scorecard.decision,
        welfare=scorecard.welfare,
        threshold=scorecard.threshold,
        exit_code=gate.exit_code,
        report=audit.report,
        card=Path(card.markdown),
        broken=[c.label for c in scorecard.constraints if c.status == "broken"],
        reasons=scorecard.reasons,
        seconds={k: round(v, 1) for k, v in seconds.items()},
        diff=diff_path,
    )


def check_parent(parent: RunDir) -> RunDir:
    """``parent`` as a finished classifier run, or the error that says why it cannot be one."""
    parent = RunDir.open(parent.path)  # refuses an unfinished run
    if parent.config.task != "classification":
        raise EthosError(
            f"{parent.path} is a {parent.config.task} run; a parent must be a classifier",
            hint="retraining and diffs compare classifiers",
        )
    return parent


def parent_link(parent: RunDir, ledger: Ledger) -> dict[str, Any]:
    """What a child records about its parent: the parent's identity and its newest entry in
    ``ledger`` (the recorded decision, else the "run" entry). A parent this ledger never saw is
    refused: the link must be checkable in the chain the child is recorded in."""
    identity = check_parent(parent).identity()
    entries = [
        e
        for e in ledger.entries(run_id=identity["run_id"])
        if e.kind in ("decision", "run") and e.model_hash == identity["model_hash"]
    ]
    if not entries:
        raise EthosError(
            f"the parent run '{identity['run_id']}' has no entry in the ledger "
            f"{ledger.url}, so the child could not link it",
            hint="record the parent first (`ethos gate PARENT`), or pass the --ledger it was "
            "recorded in",
        )
    decisions = [e for e in entries if e.kind == "decision"]
    newest = (decisions or entries)[-1]
    return {
        **identity,
        "path": str(parent.path.resolve()),
        "ledger_entry": newest.entry_hash,
        "ledger_entry_kind": newest.kind,
        "decision": newest.decision,
    }


def _silent(message: str) -> None:
    return None
