"""`ethos run`: the governed run in one command (train, audit, gate, card, ledger)."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console
from ethos.cli.report import print_summary, report_run


def run_command(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Run config (YAML)."),
    policy: str | None = typer.Option(
        None, "--policy", "-p", help="Overrides the config's policy (file or bundled name)."
    ),
    ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    output_dir: Path | None = typer.Option(None, help="Overrides output_dir from the config."),
    parent: Path | None = typer.Option(
        None,
        "--parent",
        help="The run this one changes (a mitigation, new settings): the new run is linked to "
        "it in the manifest and the ledger, and compared with it on its test rows (diff.json).",
    ),
) -> None:
    """Train, audit, gate, write the card and record it all: the governed run in one command.

    Exit code is the gate's: 0 PASS, 1 FAIL, 3 REVIEW, 4 INSUFFICIENT_EVIDENCE (2 for a user error).
    """
    from ethos import RunDir, load_config, run_pipeline

    config = load_config(config_path)
    if output_dir is not None:
        config = config.model_copy(update={"output_dir": output_dir})
    result = run_pipeline(
        config,
        policy=policy,
        ledger_url=ledger,
        quiet=quiet,
        log=lambda m: console.print(m),
        parent=RunDir.open(parent) if parent is not None else None,
        lineage={"relation": "a changed run compared with its parent"} if parent else None,
    )
    report_run(result.run)
    print_summary(result)
    if result.diff is not None:
        console.print(f"diff:   {result.diff}", markup=False)
    raise typer.Exit(result.exit_code)
