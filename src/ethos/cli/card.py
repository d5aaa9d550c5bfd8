"""`ethos card`: write a run's model card (Hugging Face README.md and its HTML rendering)."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console


def card_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finished run directory."),
) -> None:
    """Write the model card (model/README.md, Hugging Face format) and its HTML rendering."""
    from ethos import RunDir, write_card

    card = write_card(RunDir.open(run_dir))
    console.print(f"wrote {card.markdown} and {card.html}")
