"""Every command-line usage mistake a new user makes answers with one line and exit code 2.

A user found that a mistyped command, an unknown option or a missing argument printed a 40-line
traceback: the typer in use bundles its own click, whose errors the entry point did not catch.
The mistakes below run in-process through ``ethos.cli.main`` (the console script's function),
so twenty-odd cases cost one import; a subprocess case checks the installed script too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ethos.cli import main
from ethos.cli_usage import ethos_version

USAGE_MISTAKES: list[tuple[list[str], str]] = [
    ([], "Usage: ethos"),
    (["trian"], "No such command 'trian'. Did you mean 'train', 'retrain'?"),
    (["train", "--epochs", "1"], "No such option: --epochs"),
    (["train"], "missing CONFIG"),
    (["train", "no-such-config.yaml"], "no-such-config.yaml does not exist"),
    (["gate"], "Missing argument 'RUN_DIR'"),
    (["gate", "no-such-run"], "not an ethos run directory"),
    (["neuro", "closed-loop"], "Missing option '--authorised-by'"),
    (["--no-such-flag"], "No such option: --no-such-flag"),
    (["audit"], "give either RUN_DIR or --predictions"),
    (["audit", "--predictions", "compas"], "--predictions needs --label"),
    (["audit", "--threshold", "high", "run"], "Invalid value for '--threshold'"),
    (["approve", "run"], "Missing option '--as'"),
    (["predict", "run"], "Missing option '--input'"),
    (["export", "run"], "Missing option '--output'"),
    (["sweep"], "Missing argument 'CONFIG'"),
    (["audit-lm"], "Missing argument 'MODEL_DIR'"),
    (["audit-lm", "no-such-model"], "is not a Hugging Face model folder"),
    (["ledger"], "Usage: ethos ledger"),
    (["ledger", "shwo"], "No such command 'shwo'"),
    (["keys", "create"], "Missing option '--name'"),
    (["keys", "create", "--name", "x", "--rate", "lots"], "Invalid value for '--rate'"),
    (["serve"], "Missing argument 'RUN_DIR'"),
    (["genome"], "Usage: ethos genome"),
    (["genome", "score"], "Missing"),
    (["data", "describe"], "Missing argument 'TARGET'"),
    (["data", "describe", "no-such-set"], "neither a config file nor a bundled data set"),
    (["init", "--example", "no-such-example"], "no-such-example"),
    (["card", "no-such-run"], "not an ethos run directory"),
    (["run", "--policy"], "Option '--policy' requires an argument"),
]


@pytest.mark.parametrize(
    ("args", "expected"), USAGE_MISTAKES, ids=[" ".join(a) or "(bare)" for a, _ in USAGE_MISTAKES]
)
def test_usage_mistake_is_one_line_and_exit_2(
    args: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)  # relative names like "run" must not exist
    monkeypatch.setattr(sys, "argv", ["ethos", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    out = capsys.readouterr()
    assert stopped.value.code == 2, out
    assert "Traceback" not in out.err + out.out
    assert expected in out.err + out.out
    if "Usage: ethos" not in expected:  # a bare group prints its help; everything else is short
        assert len(out.err.strip().splitlines()) <= 2, out.err


def test_version_prints_the_installed_version(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "--version") == 0
    assert capsys.readouterr().out.strip() == f"ethos {ethos_version()}"
    assert ethos_version()[0].isdigit()


def test_help_shows_no_python_type_labels(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Flags once showed ``<bool>``, repeatable options ``<list[str]>`` and an optional
    argument ``[[RUN_DIR]]``."""
    assert run_main(monkeypatch, "audit", "-h") == 0
    out = capsys.readouterr().out
    assert "Usage: ethos audit [OPTIONS] [RUN_DIR]" in out
    for label in ("<bool>", "<list[str]>", "[[RUN_DIR]]", "<str>"):
        assert label not in out


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``main()`` as the console script calls it; its exit code (0 when it returns)."""
    monkeypatch.setattr(sys, "argv", ["ethos", *args])
    try:
        main()
    except SystemExit as stopped:
        return 0 if stopped.code is None else int(stopped.code)
    return 0


def test_installed_script_answers_a_typo_without_traceback() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    script = Path(sys.executable).with_name("ethos")
    result = subprocess.run(
        [str(script), "trian"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2
    assert (
        result.stderr.splitlines()[0]
        == "error: No such command 'trian'. Did you mean 'train', 'retrain'?"
    )
    assert "Traceback" not in result.stderr
