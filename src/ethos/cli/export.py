"""`ethos export`: a run's model as a standalone Hugging Face model folder."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.clearance import warn_if_not_cleared
from ethos.cli.output import console


def export_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finished run directory."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write (must not exist)."),
    merge: bool = typer.Option(
        False,
        "--merge",
        help="Fold a LoRA adapter into the base weights, giving a plain Hugging Face model that "
        "loads with from_pretrained and needs neither peft nor ethos.",
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger to check the run's decision in (warns when not cleared)."
    ),
) -> None:
    """Write a run's model as a standalone Hugging Face model folder (with its tokenizer)."""
    from ethos import RunDir, export_model

    run = RunDir.open(run_dir)
    warn_if_not_cleared(run, ledger)
    written = export_model(run, output, merge=merge)
    console.print(f"wrote {written}")
