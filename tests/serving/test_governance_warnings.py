"""`ethos predict` and `ethos export` on a run its policy failed still work, but never silently.

A user scored rows with, and exported, a FAIL run without a word (issue 22). Both commands now
read the run's decision from the ledger and warn on stderr; a PASS run gets no warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from live_server import ethos, gated_copy

from ethos.rundir import RunDir


def _rows(tmp: Path) -> Path:
    """Three COMPAS rows with every column the model was trained on."""
    from ethos.datasets import compas

    rows = tmp / "rows.csv"
    compas().head(3).to_csv(rows, index=False)
    return rows


def test_predict_and_export_warn_about_a_failed_run(tiny_run: RunDir, tmp_path: Path) -> None:
    ledger = str(tmp_path / "ledger.db")
    failed = gated_copy(tiny_run, tmp_path, "FAIL", ledger)
    scored = ethos("predict", str(failed.path), "--input", str(_rows(tmp_path)), "--ledger", ledger)
    assert scored.returncode == 0, scored.stderr
    assert scored.stderr.startswith("warning: ") and "FAILED its policy gate" in scored.stderr
    assert "not for decisions about people" in scored.stderr
    exported = ethos("export", str(failed.path), "-o", str(tmp_path / "out"), "--ledger", ledger)
    assert exported.returncode == 0, exported.stderr
    assert "FAILED its policy gate" in exported.stderr and (tmp_path / "out").is_dir()

    edited = json.loads((failed.path / "decision.json").read_text())
    edited["decision"] = "PASS"
    (failed.path / "decision.json").write_text(json.dumps(edited))
    scored = ethos("predict", str(failed.path), "--input", str(_rows(tmp_path)), "--ledger", ledger)
    assert "cannot be trusted" in scored.stderr and "changed after it was recorded" in scored.stderr


def test_a_passed_run_predicts_without_warning(tiny_run: RunDir, tmp_path: Path) -> None:
    ledger = str(tmp_path / "ledger.db")
    passed = gated_copy(tiny_run, tmp_path, "PASS", ledger)
    scored = ethos("predict", str(passed.path), "--input", str(_rows(tmp_path)), "--ledger", ledger)
    assert scored.returncode == 0, scored.stderr
    assert "warning" not in scored.stderr
    # A semicolon file (common where the decimal mark is a comma) is read like the training data.
    semicolons = tmp_path / "rows-semicolon.csv"
    pd.read_csv(_rows(tmp_path)).to_csv(semicolons, sep=";", index=False)
    again = ethos("predict", str(passed.path), "--input", str(semicolons), "--ledger", ledger)
    assert again.returncode == 0, again.stderr
    assert len((tmp_path / "rows-semicolon.predictions.csv").read_text().splitlines()) == 4
