"""Every bundled example config trains end to end on a tiny budget (a few steps, few rows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ethos.cli import _example_path
from ethos.config import load_config
from ethos.examples import example_names
from ethos.rundir import RunDir
from ethos.training import train


def test_the_examples_are_the_documented_seven() -> None:
    assert example_names() == [
        "adult",
        "bbq",
        "compas",
        "german",
        "pubmedqa",
        "pubmedqa_grounded",
        "squad_tiny",
    ]


@pytest.mark.parametrize("name", example_names())
def test_example_trains_with_a_tiny_budget(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    config = load_config(_example_path(name))
    grounding = config.grounding
    if grounding is not None:  # the tiny grounded run's 120 abstracts, not a 2-minute build
        tiny: RunDir = request.getfixturevalue("tiny_grounded_run")
        kb = tiny.manifest["grounding"]["knowledge_base"]["path"]
        grounding = grounding.model_copy(update={"knowledge_base": kb, "build_from": None})
    train_config = config.train.model_copy(update={"max_steps": 2, "batch_size": 8})
    data = config.data
    if config.task == "classification":
        data = data.model_copy(update={"sample": 160, "min_group_size": 1})
    elif config.task == "multiple_choice":
        data = data.model_copy(update={"sample": 160})
    config = config.model_copy(
        update={
            "train": train_config,
            "data": data,
            "output_dir": tmp_path,
            "model": config.model.model_copy(update={"max_length": 96}),
            "grounding": grounding,
        }
    )
    run = train(config, quiet=True)
    assert run.manifest["training"]["optimizer_steps"] == 2
    metrics = run.metrics
    if grounding is not None:
        assert run.manifest["grounding"]["knowledge_base"]["path"] == kb
    if config.task == "classification":
        assert set(metrics["baselines"]) == {"majority", "tfidf_logreg"}
        assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    elif config.task == "multiple_choice":
        assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    else:
        assert 0.0 <= metrics["test"]["f1"] <= 100.0
