"""The ``ethos data scrub`` command, registered in :mod:`ethos.cli` on the ``data`` group."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def scrub_command(
    config: str = typer.Argument(..., help="A run config (YAML) or a bundled set name."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The masked copy to write (.csv, .jsonl or .parquet; new)."
    ),
    entities: list[str] | None = typer.Option(
        None,
        "--entity",
        "-e",
        help="A Presidio entity type to mask (repeat the option); default: the audit's list.",
    ),
    score_threshold: float | None = typer.Option(
        None, help="Lowest Presidio score that counts as a hit (default 0.3)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a PII-masked copy of a data set, with its new fingerprint recorded beside it."""
    from ethos.data.scrub import scrub_dataset

    result = scrub_dataset(
        config,
        output,
        entities=entities or None,
        score_threshold=score_threshold,
        progress=not quiet,
    )
    Console(highlight=False, soft_wrap=True).print(repr(result))
