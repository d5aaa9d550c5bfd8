"""`ethos init`: write a run config to start from, from an example or from the user's data."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console
from ethos.errors import EthosError
from ethos.examples import example_names, example_text


def init(
    path: Path = typer.Argument(Path("ethos.yaml"), help="Where to write the config."),
    example: str | None = typer.Option(
        None,
        "--example",
        "-e",
        help=f"Starting point: one of {', '.join(example_names())} (default compas).",
    ),
    from_file: Path | None = typer.Option(
        None,
        "--from",
        metavar="FILE",
        help="Your own data (CSV/TSV, JSONL or Parquet): propose label, input and group columns "
        "from its columns.",
    ),
    separator: str | None = typer.Option(
        None, "--separator", help="With --from: the CSV separator (default: detected)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented run config to start from (it runs as it is).

    With --from FILE the config is proposed from your data: check the lines marked CHECK.
    """
    if from_file is not None:
        from ethos.data.init_config import summary_lines, write_config_from_file

        if example is not None:
            raise EthosError("give either --example or --from, not both")
        proposal = write_config_from_file(from_file, path, separator=separator, force=force)
        console.print(f"wrote {path} from {from_file}", markup=False)
        for line in summary_lines(proposal):
            console.print(line, markup=False)
        console.print(f"next: ethos data describe {path}, then ethos train {path}", markup=False)
        return
    if separator is not None:
        raise EthosError("--separator goes with --from FILE")
    example = example or "compas"
    text = example_text(example, absolute_data=True)
    if path.exists() and not force:
        raise EthosError(f"{path} already exists", hint="choose another path or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.print(f"wrote {path} (example '{example}'); next: ethos data describe {path}")
