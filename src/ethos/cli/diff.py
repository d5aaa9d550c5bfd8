"""`ethos diff PARENT CHILD`: a fine-tune's changes against its parent, on the same test rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    print_diff(diff)
    console.print(f"wrote {path}")


def print_diff(diff: dict[str, Any]) -> None:
    """The diff's changes with their intervals, both decisions and the constraints that moved."""
    rows = diff["rows"]
    console.print(
        f"{rows['shared_test_rows']} shared test rows, {rows['predictions_changed']} decided "
        "differently"
    )
    for name, delta in diff["metrics"].items():
        console.print(f"  {name:<12} {_change(delta)}", markup=False)
    for attribute, section in diff["fairness"].items():
        eod = section.get("equalized_odds_difference")
        if eod:
            console.print(f"  EOD {attribute:<8} {_change(eod)}", markup=False)
    decisions = diff["decisions"]
    before, after = decisions["parent"], decisions["child"]
    if before and after:
        console.print(f"decision: {before['decision']} -> {after['decision']}")
    for constraint in diff.get("constraints") or []:
        if constraint.get("paired"):
            before, after = constraint.get("parent") or {}, constraint.get("child") or {}
            console.print(
                f"  constraint {constraint['constraint']!r} ({before.get('status')} -> "
                f"{after.get('status')}): {_change(constraint['paired'])}",
                markup=False,
            )
    for change in decisions["constraints_changed"]:
        console.print(
            f"  {change['constraint']}: {change['parent']['status']} -> {change['child']['status']}"
        )


def _change(delta: dict[str, Any]) -> str:
    """``parent -> child  delta +d  95% [lo, hi]``; an undefined value reads n/a."""

    def number(value: Any, sign: str = "") -> str:
        return "n/a" if value is None else f"{value:{sign}.4f}"

    low, high = (delta.get("ci95") or [None, None])[:2]
    return (
        f"{number(delta.get('parent'))} -> {number(delta.get('child'))}  "
        f"delta {number(delta.get('delta'), '+')}  95% [{number(low, '+')}, {number(high, '+')}]"
    )
