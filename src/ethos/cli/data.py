"""`ethos data ...`: the data group, `describe` here and `scrub` from :mod:`ethos.data.scrub_cli`.

Only typer is imported at module level: ``ethos data describe --help`` must not pay for pandas or
pydantic, which the command itself needs only once it runs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ethos.cli.output import console
from ethos.data.scrub_cli import scrub_command
from ethos.errors import EthosError

if TYPE_CHECKING:
    from ethos import RunConfig
    from ethos.data.build import TokenCounter

app = typer.Typer(
    help="Inspect and prepare data sets.", no_args_is_help=True, rich_markup_mode=None
)
app.command("scrub")(scrub_command)


@app.command("describe")
def data_describe(
    target: str = typer.Argument(
        ..., metavar="TARGET", help="A run config (YAML) or a bundled set name."
    ),
    tokens: bool = typer.Option(
        True, "--tokens/--no-tokens", help="Count tokens with the model's tokenizer."
    ),
) -> None:
    """Load and validate the data: rows, label balance, groups, fingerprint and warnings."""
    from ethos import load_dataset

    config = _config_for(target)
    if config.task == "extractive_qa":
        from ethos.data.squad import load_squad

        split = config.data.split
        squad = load_squad(
            config.data.source, validation=split.validation, test=split.test, seed=split.seed
        )
        console.print(repr(squad))
        console.print(f"  fingerprint: {squad.fingerprint}")
        return
    if config.task == "multiple_choice":
        from ethos.data.choices import load_choices

        choices = load_choices(config)
        console.print(repr(choices), markup=False)
        console.print(f"  split counts: {choices.summary()['split_counts']}", markup=False)
        console.print(f"  fingerprint: {choices.fingerprint}")
        return
    counter = _token_counter(config.model.name) if tokens else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are printed with the summary below
        dataset = load_dataset(
            config.data, max_length=config.model.max_length, count_tokens=counter
        )
    console.print(repr(dataset))
    console.print(f"  fingerprint: {dataset.fingerprint}")


def _config_for(target: str) -> RunConfig:
    """A config file, or a bundled set name used with its defaults."""
    from ethos import DataConfig, RunConfig, load_config
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


def _token_counter(model_name: str) -> TokenCounter:
    from ethos.models.tokens import token_counter

    return token_counter(model_name)
