"""`ethos gate`: score a run against a policy, decide, record, and print the scorecard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ethos.cli.output import console, err_console
from ethos.errors import EthosError


def gate_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finished, audited run."),
    policy: str | None = typer.Option(
        None,
        "--policy",
        "-p",
        help="Policy YAML file or bundled name (medical, criminal-justice, credit); default: "
        "the run config's policy.",
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger URL (default $ETHOS_LEDGER_URL or ~/.ethos/ledger.db)."
    ),
    record: bool = typer.Option(
        True,
        "--record/--no-record",
        help="Append the decision to the ledger (default). --no-record gives an advisory "
        "decision in decision.advisory.json that cannot be served or approved.",
    ),
    why: str | None = typer.Option(
        None,
        "--why",
        help="Required when --policy is not the run's own policy: who asked for it and why "
        "(recorded in the ledger with the decision).",
    ),
) -> None:
    """Score a run against an ethics policy and decide: exit 0 PASS, 1 FAIL, 3 REVIEW,
    4 INSUFFICIENT_EVIDENCE, 2 error.

    Prints the scorecard (composites with weights and scores), every constraint, the reasons and
    how much each weight would have to change to flip the decision; writes decision.json and
    records it in the ledger (what serving and approval check against), and refreshes the model
    card if the run has one.
    """
    from ethos import RunDir, gate_run

    run = RunDir.open(run_dir)
    source = policy or run.config.policy
    if source is None:
        raise EthosError(
            "no policy given and the run's config names none",
            hint="pass --policy FILE or a bundled name: medical, criminal-justice, credit",
        )
    result = gate_run(run, source, ledger_url=ledger, record=record, why=why)
    _print_decision(result)
    if not record:
        console.print(
            "advisory only (--no-record): nothing was recorded, and this decision "
            "cannot be served or approved"
        )
    raise typer.Exit(result.exit_code)


def _print_decision(result: Any) -> None:
    from ethos.governance.gate import render_tree

    card = result.scorecard
    console.print(f"policy {card.policy} v{card.policy_version}")
    for line in render_tree(card):
        console.print("  " + line, markup=False)
    for c in card.constraints:
        console.print(f"  [{c.status:^9}] {c.label}: {c.detail}", markup=False)
    fragile = [s for s in result.decision["sensitivity"] if s["relative_change"] is not None]
    if fragile:
        weakest = min(fragile, key=lambda s: abs(s["relative_change"]))
        console.print(
            f"  most fragile weight: {weakest['path']} (a {weakest['relative_change']:+.1%} "
            "change flips the decision)",
            markup=False,
        )
    console.print(
        f"decision: {card.decision}  (W = {card.welfare:.3f}, threshold {card.threshold:g})"
    )
    for reason in card.reasons:
        console.print(f"  - {reason}", markup=False)
    for warning in result.decision.get("small_group_warnings", []):
        err_console.print(f"warning: {warning}", markup=False)
    console.print(f"wrote {result.path}")
