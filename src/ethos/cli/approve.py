"""`ethos approve`: a human sign-off on a REVIEW decision, recorded in the ledger."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console


def approve_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run whose decision is REVIEW."),
    actor: str = typer.Option(..., "--as", help="Who approves (recorded in the ledger)."),
    note: str = typer.Option(..., "--note", help="Why the review outcome is acceptable."),
    ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL."),
) -> None:
    """Record a human sign-off on a REVIEW decision (a FAIL cannot be approved)."""
    from ethos import RunDir, approve_run

    approval = approve_run(RunDir.open(run_dir), actor=actor, note=note, ledger_url=ledger)
    entry = approval.record["ledger"]
    console.print(
        f"approved by {approval.record['approved_by']}: ledger entry #{entry['seq']} "
        f"({entry['entry_hash'][:12]}); wrote {approval.path}"
    )
