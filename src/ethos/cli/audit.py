"""`ethos audit`: audit a run, or any system's decisions from a file."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console
from ethos.errors import EthosError


def audit_command(
    run_dir: Path | None = typer.Argument(
        None, metavar="RUN_DIR", help="A finished run directory (or use --predictions)."
    ),
    predictions: Path | None = typer.Option(
        None,
        "--predictions",
        help="Audit any system's decisions from a CSV/Parquet file (or a bundled set name, e.g. "
        "compas) instead of a run.",
    ),
    label: str | None = typer.Option(None, "--label", help="True outcome column (--predictions)."),
    prediction: str | None = typer.Option(
        None, "--prediction", help="Predicted label column (--predictions)."
    ),
    score: str | None = typer.Option(
        None, "--score", help="Score column; decisions are score >= --threshold."
    ),
    threshold: float | None = typer.Option(None, "--threshold", help="Decision threshold."),
    group: list[str] = typer.Option(
        [], "--group", help="Sensitive attribute column; repeat for several."
    ),
    positive: str | None = typer.Option(
        None,
        "--positive",
        help="The positive (selected) outcome, in both the label and the prediction column "
        "(default 1; 1/1.0/'1' and Yes/yes match). LABEL=PREDICTION when the columns use "
        "different words, e.g. 1=approved.",
    ),
    calibration: bool | None = typer.Option(
        None,
        "--calibration/--no-calibration",
        help="Demand (or skip) calibration; by default it runs when scores are probabilities.",
    ),
    checks: str | None = typer.Option(
        None, "--checks", help="Comma-separated checks for a run audit (default: all)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: RUN_DIR/audit or FILE.audit)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing audit folder."),
) -> None:
    """Audit fairness, calibration, robustness, explanations and privacy (a multiple-choice
    run: accuracy and BBQ bias; a causal LM: generation audits); write audit.json and a
    self-contained report.html.

    Examples:

      ethos audit runs/<run-id>

      ethos audit --predictions compas --label two_year_recid --score decile_score
      --threshold 5 --group race --group sex
    """
    from ethos import RunDir, audit_predictions, audit_run

    if (run_dir is None) == (predictions is None):
        raise EthosError(
            "give either RUN_DIR or --predictions FILE",
            hint="ethos audit runs/<run-id>, or ethos audit --predictions FILE --label COL ...",
        )
    if predictions is not None:
        if label is None:
            raise EthosError("--predictions needs --label COL (the true outcome)")
        result = audit_predictions(
            predictions,
            label=label,
            groups=group,
            prediction=prediction,
            score=score,
            threshold=threshold,
            positive=positive,
            calibration=calibration,
            out=out,
            replace=force,
        )
    else:
        assert run_dir is not None
        names = [c.strip() for c in checks.split(",") if c.strip()] if checks else None
        result = audit_run(RunDir.open(run_dir), out=out, checks=names, replace=force)
    for dimension, entry in result.audit["summary"].items():
        reasons = [str(r) for r in entry["reasons"]] or [""]
        console.print(f"  {dimension:<15} {entry['status']:<6} {reasons[0]}", markup=False)
        for reason in reasons[1:]:
            console.print(f"  {'':<15} {'':<6} {reason}", markup=False)
    console.print(f"wrote {result.path / 'audit.json'} and {result.report}")
