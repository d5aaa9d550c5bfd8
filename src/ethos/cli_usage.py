"""How the command line answers a usage mistake and how its --help reads.

typer (pinned in constraints.txt) bundles its own copy of click as ``typer._click``: its usage
errors are not ``click.ClickException`` instances, so a handler written for the ``click``
package let every mistyped command or missing argument end in a 40-line traceback. Here they are
caught through typer's public base class and printed as one line plus a hint, exit code 2.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from types import SimpleNamespace
from typing import Any

import typer
from rich.console import Console

USAGE_EXIT_CODE = 2
HELP_OPTION_NAMES = ["-h", "--help"]

_err = Console(stderr=True, highlight=False, soft_wrap=True)

# How each parameter type reads in --help: upper-case words, as most command lines write them,
# instead of typer's Python-type labels (``<bool>``, ``<list[str]>``).
_TYPE_WORDS = {"str": "TEXT", "path": "PATH", "int": "INTEGER", "float": "NUMBER"}


def ethos_version() -> str:
    """The installed distribution's version (the source tree's when it is not installed)."""
    try:
        return version("ethos")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "unknown (not installed)"


def print_version(value: bool) -> None:
    """``ethos --version``: print and stop before any command runs."""
    if value:
        typer.echo(f"ethos {ethos_version()}")
        raise typer.Exit(0)


def usage_error(exc: typer.TyperException) -> int:
    """Print one line saying what was wrong with the command line and where help is.

    A bare ``ethos`` (or a bare command group) prints its help: that is what the user needs, but
    it still exits 2 because no command ran.
    """
    ctx: Any = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        typer.echo(exc.format_message())  # the help text
        return USAGE_EXIT_CODE
    message = exc.format_message().strip().splitlines()
    _err.print(f"error: {message[0] if message else type(exc).__name__}", markup=False)
    command = ctx.command_path if ctx is not None else "ethos"
    _err.print(f"  fix: see '{command} --help' for the usage", markup=False)
    return USAGE_EXIT_CODE


def readable_help(command: Any) -> None:
    """Give every option of ``command`` and its sub-commands a plain metavar.

    Flags get none (``--force`` takes no value, so ``<bool>`` beside it misleads), repeatable
    options name their item type, values and arguments get an upper-case word.

    An absent ``--help`` reads as ``False`` rather than ``None``: typer passes a bool through
    as it is but builds a pydantic validator for ``None``, and that import alone (~0.2 s) was
    most of what ``ethos data describe --help`` cost once commands were loaded lazily.
    """
    help_option = command.get_help_option(SimpleNamespace(help_option_names=HELP_OPTION_NAMES))
    if help_option is not None:
        help_option.metavar = ""
        help_option.default = False
    for param in getattr(command, "params", []):
        if getattr(param, "metavar", None) is not None:
            continue
        if param.param_type_name == "argument":  # typer would show "{request}"
            param.metavar = str(param.name).upper()
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
            continue
        label = _type_label(param)
        if label is not None and param.param_type_name == "option":
            param.metavar = label
    for sub in getattr(command, "commands", {}).values():
        readable_help(sub)


def _type_label(param: Any) -> str | None:
    try:
        shown = param.display_type(None)
    except Exception:  # a typer change in how types are described: keep typer's label
        return None
    bare = str(shown).strip("<>")
    if bare.startswith("list[") and bare.endswith("]"):
        bare = bare[len("list[") : -1]
    if "|" in bare:  # choices: show them, they are the help
        return "[" + bare + "]"
    return _TYPE_WORDS.get(bare, bare.upper())
