"""`ethos diff PARENT CHILD`: a fine-tune's changes against its parent, on the same test rows."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console


def diff_command(
    parent: Path = typer.Argument(..., metavar="PARENT", help="The run the child came from."),
    child: Path = typer.Argument(..., metavar="CHILD", help="The changed run (gets diff.json)."),
    resamples: int = typer.Option(
        1000, "--resamples", min=1, max=100_000, help="Paired bootstrap resamples."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the resampling (the diff is repeatable)."),
) -> None:
    """Compare a child run with its parent: paired bootstrap deltas with 95% intervals on the
    shared test rows, and the gate decisions side by side; writes the child's diff.json.
    """
    from ethos import RunDir
    from ethos.governance.diff import write_diff

    diff, path = write_diff(
        RunDir.open(parent), RunDir.open(child), n_resamples=resamples, seed=seed
    )
    rows = diff["rows"]
    console.print(
        f"{rows['shared_test_rows']} shared test rows, {rows['predictions_changed']} decided "
        "differently"
    )
    for name, delta in diff["metrics"].items():
        low, high = delta["ci95"]
        console.print(
            f"  {name:<10} {delta['parent']:.4f} -> {delta['child']:.4f}  "
            f"delta {delta['delta']:+.4f}  95% [{low:+.4f}, {high:+.4f}]"
        )
    for attribute, section in diff["fairness"].items():
        eod = section.get("equalized_odds_difference")
        if eod:
            low, high = eod["ci95"]
            console.print(
                f"  EOD {attribute:<8} {eod['parent']:.4f} -> {eod['child']:.4f}  "
                f"delta {eod['delta']:+.4f}  95% [{low:+.4f}, {high:+.4f}]"
            )
    decisions = diff["decisions"]
    before, after = decisions["parent"], decisions["child"]
    if before and after:
        console.print(f"decision: {before['decision']} -> {after['decision']}")
    for change in decisions["constraints_changed"]:
        console.print(
            f"  {change['constraint']}: {change['parent']['status']} -> {change['child']['status']}"
        )
    console.print(f"wrote {path}")
