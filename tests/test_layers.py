"""The one-way flow of the stages is a contract a machine checks (`lint-imports`, in `make lint`).

The layers are declared in pyproject.toml (``[tool.importlinter]``) and explained in
docs/architecture.md. These tests show that the contract holds on the tree and that it is not
vacuous: an upward import added to a temporary copy of the package breaks it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root/src`` with ``root/pyproject.toml``."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(
        REPO / "src" / "ethos", root / "src" / "ethos", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


def test_the_tree_keeps_the_contract(copy: Path) -> None:
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("data/records.py", "from ethos.audit import fairness"),  # data -> audit
        ("governance/policy.py", "from ethos.serving import app"),  # governance -> serving
        ("training/loop.py", "from ethos.pipeline import run_pipeline"),  # training -> pipeline
    ],
)
def test_an_upward_import_breaks_it(copy: Path, module: str, upward: str) -> None:
    target = copy / "src" / "ethos" / module
    original = target.read_text(encoding="utf-8")
    try:
        # Inside a function, as lazy imports are written: the contract sees those too.
        target.write_text(original + f"\n\ndef _upward() -> None:\n    {upward}  # noqa\n")
        result = lint_imports(copy)
    finally:
        target.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.stdout
    assert "BROKEN" in result.stdout and "0 kept, 1 broken" in result.stdout


def test_the_architecture_page_lists_the_floors_of_the_contract() -> None:
    """docs/architecture.md is kept true: its floors table names the contract's layers in order."""
    import re
    import tomllib

    contract = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = contract["contracts"][0]["layers"]
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| (.+?) \|", page, flags=re.M)
    documented = [sorted(re.findall(r"`(\w+)`", rooms)) for _, rooms in rows]
    declared = [
        sorted(m.split(".")[1] for m in layer.replace(" ", "").split("|")) for layer in layers
    ]
    assert documented == declared
