"""Run the `ethos` command as a user would, in a subprocess, the same way in every test.

Test modules each used to build ``[sys.executable, "-m", "ethos", ...]`` with a slightly different
environment; this is the one copy. The hub is offline (no test downloads a model) and help and
tables are laid out for a 200-column page unless a test asks for no declared width
(``columns=None``).

Importable from any test module as ``from cli_helpers import run_ethos``: pytest puts this
folder on ``sys.path`` for tests/conftest.py (as it does for ``pg_cluster``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ETHOS = (sys.executable, "-m", "ethos")
"""The command line that runs this checkout's ethos with the test interpreter."""


def ethos_env(env: Mapping[str, str] | None = None, *, columns: int | None = 200) -> dict[str, str]:
    """The environment for an ``ethos`` subprocess: this one, offline, plus ``env``.

    ``columns=None`` removes ``COLUMNS`` and ``LINES``, so the command sees no declared width.
    """
    merged = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if columns is None:
        merged.pop("COLUMNS", None)
        merged.pop("LINES", None)
    else:
        merged["COLUMNS"] = str(columns)
    return {**merged, **(env or {})}


def run_ethos(
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    columns: int | None = 200,
) -> subprocess.CompletedProcess[str]:
    """``ethos ARGS`` to completion, its output captured as text (exit code not checked)."""
    return subprocess.run(
        [*ETHOS, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ethos_env(env, columns=columns),
        timeout=timeout,
    )
