"""`ethos predict`: score a file of rows with a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.clearance import warn_if_not_cleared
from ethos.cli.output import console


def predict(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finished run directory."),
    input_path: Path = typer.Option(..., "--input", "-i", help="CSV or JSONL rows to score."),
    output_path: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write (CSV); default INPUT.predictions.csv."
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger to check the run's decision in (warns when not cleared)."
    ),
) -> None:
    """Score a file with a trained run: the same rows plus predicted label and probabilities."""
    from ethos import RunDir, predict_file

    run = RunDir.open(run_dir)
    warn_if_not_cleared(run, ledger)
    written = predict_file(run, input_path, output_path)
    console.print(f"wrote {written}")
