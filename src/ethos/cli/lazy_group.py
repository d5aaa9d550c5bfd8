"""A command group that imports a command's module only when that command is used.

Building every command at start-up imported every sub-app (torch, scikit-learn, spaCy, FastAPI,
SQLAlchemy, MNE, matplotlib) and made ``ethos --help`` take seconds. Here the root group knows
each command's name and one-line summary statically; the group lists those, and the module that
defines a command is imported when the command is resolved, i.e. when it runs or its own
``--help`` is asked for. The loaded command is built by typer exactly as an eager
``app.command(name)`` or ``app.add_typer(sub_app, name=..., help=...)`` would build it.
"""

from __future__ import annotations

from dataclasses import dataclass
from gettext import gettext
from importlib import import_module
from typing import Any, ClassVar

import typer
from typer._click import Command, Context, HelpFormatter
from typer.core import MarkupMode, TyperCommand, TyperGroup

from ethos.cli_usage import readable_help


@dataclass(frozen=True)
class LazyCommand:
    """A command known by name and summary, defined by ``target`` (``"module:attribute"``).

    The attribute is either a command function or a ``typer.Typer`` sub-app (a command group).
    ``summary`` is what the root's command list shows: a function's docstring's first paragraph
    (tests/test_cli_startup.py checks the two agree), or a group's whole help, which it also
    becomes, as ``add_typer(help=...)`` did.
    """

    name: str
    target: str
    summary: str

    def load(self, *, rich_markup_mode: MarkupMode, suggest_commands: bool) -> Command:
        """Import the module and build the click command typer would have built eagerly."""
        module, _, attribute = self.target.partition(":")
        defined = getattr(import_module(module), attribute)
        holder = typer.Typer(
            rich_markup_mode=rich_markup_mode,
            suggest_commands=suggest_commands,
            add_completion=False,
            pretty_exceptions_enable=False,
        )
        if isinstance(defined, typer.Typer):
            holder.add_typer(defined, name=self.name, help=self.summary)
        else:
            holder.command(self.name)(defined)
        command = typer.main.get_group(holder).commands[self.name]
        readable_help(command)
        return command


class _Unloaded(TyperCommand):
    """Stands in the group's command table until the real command is asked for."""

    def __init__(self, spec: LazyCommand) -> None:
        super().__init__(spec.name, help=spec.summary)
        self.spec = spec


class LazyGroup(TyperGroup):
    """A typer group whose :attr:`lazy_commands` are imported on first use.

    Subclass it with ``lazy_commands`` set and pass the subclass as ``typer.Typer(cls=...)``.
    The placeholders sit in ``self.commands``, so listing, ordering and typo suggestions ("Did
    you mean 'train'?") see every command without importing any.
    """

    lazy_commands: ClassVar[tuple[LazyCommand, ...]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for spec in self.lazy_commands:
            self.commands.setdefault(spec.name, _Unloaded(spec))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """The command named ``cmd_name``, importing its module the first time."""
        command = self.commands.get(cmd_name)
        if isinstance(command, _Unloaded):
            command = command.spec.load(
                rich_markup_mode=self.rich_markup_mode, suggest_commands=self.suggest_commands
            )
            self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """typer's command list, read from the table so that listing imports nothing."""
        shown = [(name, command) for name, command in self.commands.items() if not command.hidden]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)
        with formatter.section(gettext("Commands")):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in shown])
