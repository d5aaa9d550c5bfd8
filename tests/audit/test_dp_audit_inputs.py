"""Bad requests for canaries are refused before any training, with the fix, and leave nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli_helpers import run_ethos
from ethos import RunConfig
from ethos.config import validate_config
from ethos.errors import ConfigError, DataError
from run_fixtures import tiny_compas_config, tiny_qa_config, train_quietly


@pytest.mark.parametrize(
    ("canaries", "expected"),
    [
        ({"count": 0}, "train.canaries.count: Input should be greater than or equal to 2"),
        ({"count": -5}, "train.canaries.count: Input should be greater than or equal to 2"),
        ({"count": "ten"}, "train.canaries.count: Input should be a valid integer"),
        ({"count": 2.5}, "train.canaries.count: Input should be a valid integer"),
        ({"count": True}, "train.canaries.count: Input should be a valid integer"),
        ({"count": 10**9}, "train.canaries.count: Input should be less than or equal to 100000"),
        ({}, "train.canaries.count: required key is missing"),
        ({"count": 10, "sed": 1}, "train.canaries.sed: unknown key; did you mean 'seed'?"),
        (64, "train.canaries: Input should be a valid dictionary"),
    ],
)
def test_a_malformed_canaries_section_names_the_key(canaries: Any, expected: str) -> None:
    raw = {"data": {"source": "compas"}, "train": {"canaries": canaries}}
    with pytest.raises(ConfigError) as info:
        validate_config(raw, Path("run.yaml"))
    assert expected in str(info.value)


def test_canaries_on_a_question_answering_run_are_refused(tmp_path: Path) -> None:
    raw = tiny_qa_config(tmp_path).model_dump(mode="json")
    raw["train"]["canaries"] = {"count": 8}
    config = RunConfig.model_validate(raw)
    with pytest.raises(
        ConfigError, match=r"train\.canaries is available for classification"
    ) as info:
        train_quietly(config)
    assert "remove train.canaries or set task: classification" in str(info.value.hint)
    assert not any(tmp_path.iterdir())


def test_more_canaries_than_training_rows_is_refused_before_training(tmp_path: Path) -> None:
    config = tiny_compas_config(tmp_path, sample=40, canaries={"count": 100})
    with pytest.raises(DataError, match=r"more than the 2\d training rows") as info:
        train_quietly(config)
    assert "at most" in str(info.value.hint)
    assert not any(tmp_path.iterdir())  # no run folder, so nothing for a ledger to record


def test_the_cli_prints_one_line_errors_for_bad_canaries(tmp_path: Path) -> None:
    zero = tmp_path / "zero.yaml"
    zero.write_text("data:\n  source: compas\ntrain:\n  canaries:\n    count: 0\n")
    done = run_ethos("train", str(zero), "--output-dir", str(tmp_path / "runs"))
    assert done.returncode == 2, done.stderr
    assert "train.canaries.count (line 5)" in done.stderr
    assert "Traceback" not in done.stderr
    many = tmp_path / "many.yaml"
    many.write_text(
        "data:\n  source: compas\n  sample: 40\n  min_group_size: 1\n"
        "train:\n  canaries:\n    count: 100\n"
    )
    done = run_ethos("train", str(many), "--output-dir", str(tmp_path / "runs"))
    assert done.returncode == 2, done.stderr
    assert "more than the" in done.stderr and "fix:" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
