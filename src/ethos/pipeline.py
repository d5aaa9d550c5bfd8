"""`ethos run CONFIG`: train -> audit -> gate -> card -> ledger, one command, one summary.

Each stage is the same function its own command calls, so `ethos run` is only their order plus
the "run" ledger entry that records the trained model's identity before any judgement of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ethos.config import RunConfig
from ethos.errors import EthosError
from ethos.rundir import RunDir


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


def run_pipeline(
    config: RunConfig,
    *,
    policy: str | None = None,
    ledger_url: str | None = None,
    actor: str | None = None,
    quiet: bool = False,
    log: Any = print,
) -> PipelineResult:
    """The whole governed run; ``log`` receives one line per stage."""
    from ethos.audit.runner import audit_run
    from ethos.governance.card import write_card
    from ethos.governance.gate import current_actor, gate_run
    from ethos.governance.ledger import Ledger
    from ethos.governance.policy import load_policy
    from ethos.training import train

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
    Ledger.open(ledger_url).close()  # likewise an unreachable ledger
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    log("1/5 training ...")
    run = train(config, quiet=quiet)
    seconds["train"] = time.perf_counter() - started
    manifest = run.manifest
    with Ledger.open(ledger_url) as ledger:
        ledger.append(
            kind="run",
            actor=actor or current_actor(),
            run_id=manifest["run_id"],
            dataset_fingerprint=manifest["data"]["fingerprint"],
            config_hash=manifest["config_hash"],
            model_hash=manifest["model"]["weights_sha256"],
            payload={"task": manifest["task"], "model": manifest["model"]["name"]},
        )

    started = time.perf_counter()
    log(f"2/5 auditing {run.path} ...")
    audit = audit_run(run, replace=True)
    seconds["audit"] = time.perf_counter() - started

    started = time.perf_counter()
    log("3/5 gating against the policy ...")
    gate = gate_run(run, source, ledger_url=ledger_url, actor=actor)
    seconds["gate"] = time.perf_counter() - started

    log("4/5 writing the model card ...")
    card = write_card(run)
    log("5/5 recorded in the ledger")
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
    )
