"""Consoles for command output that stay readable when piped or captured.

rich lays tables out for 80 columns whenever standard output is not a terminal (a pipe, a log
file, CI), which cut key ids that ``ethos keys revoke`` then refused and wrapped ledger dates.
Piped output gets a wide page instead; a real terminal keeps its own width, and the columns a
user copies (ids, hashes, times) are given their full width so only prose columns wrap.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

PIPED_WIDTH = 240


def output_console(*, stderr: bool = False) -> Console:
    """A console for command output: the terminal's width, or a wide page when piped."""
    stream = sys.stderr if stderr else sys.stdout
    width: int | None = None
    if not stream.isatty():
        width = max(_columns_env(), PIPED_WIDTH)
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def _columns_env() -> int:
    try:
        return int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        return 0
