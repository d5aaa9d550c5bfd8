"""The model card's intended use: declared in the config (`intended_use`) or marked as derived."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ethos import ConfigError, load_config
from ethos.governance.card import card_documents, render_card
from ethos.rundir import RunDir


def finished_run(tmp_path: Path, config: dict[str, Any]) -> RunDir:
    """A run directory with the files the card reads (no model weights needed)."""
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text(json.dumps(config))
    manifest = {
        "run_id": "20260101-000000-loans-abcdef12",
        "created_utc": "2026-01-01T00:00:00+00:00",
        "task": "classification",
        "config_hash": "c" * 64,
        "data": {"name": "loans.csv", "fingerprint": "f" * 64, "label_names": ["no", "yes"]},
        "model": {"name": "default", "weights_sha256": "e" * 64},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    scores = {"accuracy": 0.7, "macro_f1": 0.6, "auroc": 0.74}
    (run / "metrics.json").write_text(json.dumps({"test": scores, "validation": scores}))
    return RunDir.open(run)


def section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, heading
    return match.group(1)


def test_a_declared_intended_use_is_printed_as_declared(tmp_path: Path) -> None:
    declared = {
        "purpose": "Rank loan applications | for *review*",
        "users": "credit officers",
        "out_of_scope": ["automated rejection", "employment screening"],
    }
    config = {"data": {"source": "loans.csv", "label": "repaid"}, "intended_use": declared}
    card = render_card(card_documents(finished_run(tmp_path, config)))
    use = section(card, "Intended use")
    assert "**Declared** in the run configuration (`intended_use`)" in use
    assert "- Primary intended use: Rank loan applications \\| for \\*review\\*" in use
    assert "- Primary intended users: credit officers" in use
    assert "not recorded in the run" not in use
    assert "Predicts `repaid`" in use  # what the data imply is still stated, as derived
    out = section(card, "Out-of-scope use")
    assert "**Declared** in the run configuration (`intended_use.out_of_scope`)" in out
    assert "- automated rejection\n- employment screening" in out


def test_without_a_declaration_the_section_says_it_is_derived(tmp_path: Path) -> None:
    config = {"data": {"source": "loans.csv", "label": "repaid"}}
    card = render_card(card_documents(finished_run(tmp_path, config)))
    use = section(card, "Intended use")
    assert "**Derived, not declared**" in use and "no `intended_use`" in use
    assert "Primary intended users: not recorded in the run." in use
    assert "**Derived, not declared**" in section(card, "Out-of-scope use")


def test_a_string_is_the_purpose(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("data: {source: compas}\nintended_use: Research on recidivism scores\n")
    declared = load_config(path).intended_use
    assert declared is not None and declared.purpose == "Research on recidivism scores"
    assert declared.users is None and declared.out_of_scope == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{purpos: x}", r"intended_use\.purpos \(line 2\): unknown key; did you mean 'purpose'"),
        ("{users: officers}", r"intended_use\.purpose \(line 2\): required key is missing"),
        ("'   '", r"intended_use\.purpose \(line 2\): .*must not be blank"),
        ("{purpose: x, out_of_scope: ['']}", r"intended_use\.out_of_scope.*at least 1 character"),
        (f"'{'x' * 2001}'", r"intended_use\.purpose .*at most 2000 characters"),
        ("[a, b]", r"intended_use \(line 2\)"),
    ],
)
def test_bad_intended_use_names_key_and_line(tmp_path: Path, value: str, message: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"data: {{source: compas}}\nintended_use: {value}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)
