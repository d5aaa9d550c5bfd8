"""`ethos retrain PARENT --feedback FILE|DB`: a child trained on feedback, governed, diffed."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console
from ethos.cli.report import print_summary, report_run


def retrain_command(
    parent: Path = typer.Argument(..., metavar="PARENT", help="The run to continue from."),
    feedback: str = typer.Option(
        ...,
        "--feedback",
        "-f",
        help="Labelled feedback: a file (csv, jsonl, parquet) in the parent's data schema, or "
        "the serving store (its --db URL or SQLite file) of an `ethos serve --keep-inputs`.",
    ),
    replay: float = typer.Option(
        0.5,
        "--replay",
        min=0.0,
        max=0.99,
        help="Share of the child's training rows replayed from the parent's training part "
        "(0: feedback alone; 0.5: as many parent rows as feedback rows).",
    ),
    holdout: float = typer.Option(
        0.2,
        "--holdout",
        min=0.0,
        max=0.9,
        help="Share of the feedback held out and added to the parent's test rows.",
    ),
    l2_to_parent: float | None = typer.Option(
        None,
        "--l2-to-parent",
        min=0.0,
        help="Weight of an L2 pull toward the parent's weights (forgets less).",
    ),
    epochs: float | None = typer.Option(None, "--epochs", min=0.01, help="Default: the parent's."),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", min=1e-12, help="Default: the parent's."
    ),
    max_steps: int | None = typer.Option(
        None, "--max-steps", min=1, help="Stop after this many optimizer steps."
    ),
    policy: str | None = typer.Option(
        None, "--policy", "-p", help="Default: the parent's policy (another one is recorded)."
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger URL; the parent must be recorded in it."
    ),
    output_dir: Path | None = typer.Option(None, help="Default: the parent's folder."),
    name: str | None = typer.Option(None, "--name", help="The child's run id."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fine-tune a child from a run's weights on labelled feedback (with a replay of the parent's
    training rows), then audit, gate, diff it against the parent and record it linked to it.

    The child's test part is the parent's plus a held-out share of the feedback, so forgetting
    and gains are measured on the same rows. Exit code is the child's gate decision: 0 PASS,
    1 FAIL, 3 REVIEW, 4 INSUFFICIENT_EVIDENCE (2 for a user error).
    """
    from ethos import retrain

    result = retrain(
        parent,
        feedback,
        replay=replay,
        holdout=holdout,
        l2_to_parent=l2_to_parent,
        epochs=epochs,
        learning_rate=learning_rate,
        max_steps=max_steps,
        policy=policy,
        ledger_url=ledger,
        output_dir=output_dir,
        run_name=name,
        quiet=quiet,
        log=lambda m: console.print(m, markup=False),
    )
    report_run(result.run)
    print_summary(result)
    if result.diff is not None:
        console.print(f"diff:   {result.diff}", markup=False)
    raise typer.Exit(result.exit_code)
