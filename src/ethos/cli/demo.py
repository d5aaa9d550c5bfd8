"""`ethos demo`: the main job end to end on bundled COMPAS."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.data import data_describe
from ethos.cli.output import console
from ethos.cli.report import print_summary, report_run


def demo(quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """The main job on bundled COMPAS: describe the data, then the governed run — fine-tune,
    compare with baselines, audit, gate against the criminal-justice policy, write the card and
    record it in the ledger. Exits 0 whatever the decision (it is a demonstration)."""
    from ethos import load_config, run_pipeline

    config = load_config(_example_path("compas"))
    data_describe("compas", tokens=False)
    result = run_pipeline(config, quiet=quiet, log=lambda m: console.print(m))
    report_run(result.run)
    console.print(
        f"training {result.seconds['train']:.0f} s, audit {result.seconds['audit']:.0f} s"
    )
    print_summary(result)


def _example_path(name: str) -> Path:
    """The installed path of a bundled example config."""
    from importlib import resources

    return Path(str(resources.files("ethos.examples") / f"{name}.yaml"))
