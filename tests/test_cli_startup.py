"""`ethos --help` answers at once: commands are imported when used, not at start-up.

The command line used to import every sub-app (torch, scikit-learn, spaCy, FastAPI, SQLAlchemy,
MNE, matplotlib) before printing anything, so ``ethos --help`` took over 4 s. These tests hold
the start-up to what the help needs, keep the root's static command summaries in step with the
commands themselves, and keep ``import ethos`` light.
"""

from __future__ import annotations

import inspect
import json
import statistics
import subprocess
import sys
import time
from importlib import import_module
from pathlib import Path

import pytest
import typer

import ethos
from cli_helpers import ethos_env
from ethos.cli import app
from ethos.cli.lazy_group import LazyGroup
from ethos.cli.root import COMMANDS

SCRIPT = Path(sys.executable).with_name("ethos")
HELP_COMMANDS = [["--help"], ["data", "describe", "--help"]]
HEAVY = ["torch", "sklearn", "fairlearn", "spacy", "fastapi", "sqlalchemy", "mne", "matplotlib",
         "pandas", "pydantic"]  # fmt: skip

# Runs the CLI in-process as the console script does, then names every top-level package loaded.
LOADED_BY_MAIN = """
import json, sys
sys.argv = ["ethos", *json.loads(sys.argv[1])]
from ethos.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def wall_seconds(args: list[str]) -> float:
    """Median wall time of five runs of the installed script (a loaded machine varies a lot)."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        done = subprocess.run(
            [str(SCRIPT), *args], capture_output=True, text=True, env=ethos_env(), timeout=60
        )
        times.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stderr
    return statistics.median(times)


def loaded_packages(code: str, *args: str) -> set[str]:
    """Top-level packages a fresh interpreter has loaded after ``code`` (which reports them)."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=ethos_env(),
        timeout=60,
    )
    return set(json.loads(done.stderr.splitlines()[-1]))


@pytest.mark.parametrize("args", HELP_COMMANDS, ids=" ".join)
def test_help_answers_within_a_second(args: list[str]) -> None:
    # About 0.2 s on a quiet 2-core machine (4.3 s when every sub-app was imported at start);
    # 1 s leaves room for a loaded one.
    assert wall_seconds(args) < 1.0


@pytest.mark.parametrize("args", HELP_COMMANDS, ids=" ".join)
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    loaded = loaded_packages(LOADED_BY_MAIN, json.dumps(args))
    assert "ethos" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_import_ethos_loads_no_heavy_library() -> None:
    code = "import json, sys, ethos; sys.stderr.write(json.dumps(sorted(sys.modules)))"
    assert not loaded_packages(code) & set(HEAVY)


def test_root_summaries_match_the_commands() -> None:
    """The root lists each command from a static summary; it must say what the command says.

    A function's summary is its docstring's first paragraph (all that click shows in a list); a
    group's summary is its help outright, so there is nothing to drift.
    """
    for spec in COMMANDS:
        module, _, attribute = spec.target.partition(":")
        if attribute == "app":  # a sub-app (importing genome and neuro takes seconds)
            continue
        defined = getattr(import_module(module), attribute)
        first_paragraph = (inspect.getdoc(defined) or "").split("\n\n")[0]
        assert " ".join(spec.summary.split()) == " ".join(first_paragraph.split()), spec.name


def test_every_command_loads_with_its_own_help() -> None:
    """Resolving a command imports its module and builds it as typer would, readable help too."""
    root = typer.main.get_command(app)
    assert isinstance(root, LazyGroup)
    ctx = typer.Context(root, info_name="ethos")
    assert root.list_commands(ctx) == [spec.name for spec in COMMANDS]
    for spec in COMMANDS:
        if spec.name in ("genome", "neuro"):  # seconds of imports; tests/genome and tests/neuro
            continue  # run them through ethos.cli
        command = root.get_command(ctx, spec.name)
        assert command is not None and command.name == spec.name
        assert root.get_command(ctx, spec.name) is command  # built once
        help_text = command.get_help(typer.Context(command, info_name=spec.name, parent=ctx))
        assert "<bool>" not in help_text and "<list[" not in help_text


def test_public_api_names_resolve() -> None:
    """Every name in ``ethos.__all__`` imports (lazily) from where the map says it lives."""
    missing = [name for name in ethos.__all__ if not hasattr(ethos, name)]
    assert not missing
    assert ethos.run_sweep.__name__ == "sweep" and ethos.resume_run.__name__ == "resume"
    assert set(ethos.__all__) <= set(dir(ethos))
    with pytest.raises(AttributeError, match="no_such_name"):
        ethos.no_such_name  # noqa: B018
