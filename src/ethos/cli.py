"""The `ethos` command line. Every command is a thin call into the Python API.

User mistakes (EthosError) are printed as one message without a traceback and exit with code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ethos.data.build import TokenCounter

from ethos.config import DataConfig, RunConfig, load_config
from ethos.errors import USER_ERROR_EXIT_CODE, EthosError
from ethos.examples import example_names, example_text
from ethos.genome.cli import app as genome_app

app = typer.Typer(
    name="ethos",
    help="Fine-tune pretrained models for high-stakes decisions with ethics built into every run: "
    "train under a declared policy, audit, score, gate, document and record.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect and prepare data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(genome_app, name="genome", help="CRISPR guide design and off-target scoring.")

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)


@app.command()
def init(
    path: Path = typer.Argument(Path("ethos.yaml"), help="Where to write the config."),
    example: str = typer.Option(
        "compas", "--example", "-e", help=f"Starting point: one of {', '.join(example_names())}."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented run config to start from (it runs as it is)."""
    text = example_text(example)
    if path.exists() and not force:
        raise EthosError(f"{path} already exists", hint="choose another path or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.print(f"wrote {path} (example '{example}'); next: ethos data describe {path}")


def _config_for(target: str) -> RunConfig:
    """A config file, or a bundled set name used with its defaults."""
    from ethos.config import looks_like_path
    from ethos.datasets import BUNDLED, bundled_names

    if target in BUNDLED and not Path(target).exists():
        return RunConfig(data=DataConfig(source=target))
    if not looks_like_path(target) and not Path(target).exists():
        raise EthosError(
            f"'{target}' is neither a config file nor a bundled data set",
            hint=f"pass a YAML config path or one of: {', '.join(bundled_names())}",
        )
    return load_config(target)


@data_app.command("describe")
def data_describe(
    target: str = typer.Argument(..., help="A run config (YAML) or a bundled set name."),
    tokens: bool = typer.Option(
        True, "--tokens/--no-tokens", help="Count tokens with the model's tokenizer."
    ),
) -> None:
    """Load and validate the data: rows, label balance, groups, fingerprint and warnings."""
    from ethos.data import load_dataset

    config = _config_for(target)
    counter = _token_counter(config.model.name) if tokens else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are printed with the summary below
        dataset = load_dataset(
            config.data, max_length=config.model.max_length, count_tokens=counter
        )
    console.print(repr(dataset))
    console.print(f"  fingerprint: {dataset.fingerprint}")


def _token_counter(model_name: str) -> TokenCounter:
    from ethos.models.tokens import token_counter

    return token_counter(model_name)


@app.command()
def demo() -> None:
    """The main job, end to end on the bundled COMPAS data (for now: load and describe it)."""
    data_describe("compas", tokens=True)


def main() -> None:
    """Console entry point: one clear line for user errors, exit code 2."""
    try:
        app(standalone_mode=False)
    except EthosError as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(USER_ERROR_EXIT_CODE)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
