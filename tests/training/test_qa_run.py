"""Extractive QA through the same loop: squad_tiny end to end, and the mistakes it refuses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ethos import ConfigError, RunConfig
from ethos.config import load_config
from ethos.data.squad import SQUAD_TINY_PATH
from ethos.models.squad_metric import squad_scores
from ethos.rundir import RunDir
from ethos.training import train
from run_fixtures import tiny_qa_config as qa_config


@pytest.fixture(scope="module")
def qa_run(tiny_qa_run: RunDir) -> RunDir:
    """The session's shared run (tests/conftest.py)."""
    return tiny_qa_run


def test_qa_run_reports_official_squad_scores(qa_run: RunDir) -> None:
    metrics = qa_run.metrics
    assert qa_run.manifest["task"] == "extractive_qa"
    assert qa_run.manifest["data"]["format"] == "squad-1.1"
    assert qa_run.manifest["training"]["optimizer_steps"] == 3
    predictions = qa_run.predictions()
    assert set(predictions["split"]) == {"validation", "test"}
    for part in ("validation", "test"):
        rows = predictions[predictions["split"] == part]
        # the stored per-question answers reproduce the reported corpus scores
        recomputed = squad_scores(
            dict(zip(rows["id"], rows["predicted_answer"], strict=True)),
            {i: list(g) for i, g in zip(rows["id"], rows["gold_answers"], strict=True)},
        )
        assert metrics[part]["exact_match"] == pytest.approx(recomputed["exact_match"])
        assert metrics[part]["f1"] == pytest.approx(recomputed["f1"])
        assert metrics[part]["count"] == len(rows) > 0
        assert 0.0 <= metrics[part]["f1"] <= 100.0
    assert metrics["features"]["train"] >= qa_run.manifest["data"]["split_counts"]["train"]


def test_qa_predictions_are_spans_of_their_contexts(qa_run: RunDir) -> None:
    import json

    document = json.loads(SQUAD_TINY_PATH.read_text())
    context_of = {
        q["id"]: p["context"]
        for article in document["data"]
        for p in article["paragraphs"]
        for q in p["qas"]
    }
    predictions: pd.DataFrame = qa_run.predictions()
    for qid, answer in zip(predictions["id"], predictions["predicted_answer"], strict=True):
        assert answer in context_of[qid]


def test_qa_on_a_classification_set_is_refused(tmp_path: Path) -> None:
    config = RunConfig.model_validate(
        {"data": {"source": "compas"}, "task": "extractive_qa", "output_dir": str(tmp_path)}
    )
    with pytest.raises(ConfigError, match=r"needs a SQuAD-format JSON file.*compas"):
        train(config, quiet=True)
    with pytest.raises(ConfigError, match=r"data\.label is a classification setting"):
        train(qa_config(tmp_path, label="answer"), quiet=True)
    stopping = qa_config(tmp_path).model_copy(deep=True)
    stopping = RunConfig.model_validate(
        {**stopping.model_dump(), "train": {"early_stopping": {"metric": "auroc"}}}
    )
    with pytest.raises(ConfigError, match="auroc' is a classification metric"):
        train(stopping, quiet=True)
    assert not list(tmp_path.iterdir())


def test_classification_on_a_squad_file_is_refused(tmp_path: Path) -> None:
    config = qa_config(tmp_path).model_copy(update={"task": "classification"})
    with pytest.raises(ConfigError, match="set task: extractive_qa"):
        train(config, quiet=True)


def test_squad_tiny_example_config_loads() -> None:
    from ethos.cli import _example_path

    config = load_config(_example_path("squad_tiny"))
    assert config.task == "extractive_qa"
    assert Path(config.data.source) == SQUAD_TINY_PATH
