"""Tiny real runs with each training-time mitigation: they train, record what they did in the
manifest and the card, and a DP run resumes from its checkpoint to the same result."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from ethos import RunConfig
from ethos.governance.card import write_card
from ethos.rundir import RunDir
from ethos.training import train
from ethos.training.run import resume


def tiny(tmp: Path, epochs: float = 1, **options: Any) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": 240, "min_group_size": 1},
            "model": {"max_length": 32},
            "train": {"epochs": epochs, "batch_size": 16, "learning_rate": 1e-4, **options},
            "output_dir": str(tmp),
            "seed": 5,
        }
    )


def fit(config: RunConfig) -> RunDir:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(config, quiet=True)


def test_penalty_run_records_its_mitigation_in_manifest_and_card(tmp_path: Path) -> None:
    fairness = {"method": "penalty", "constraint": "demographic_parity", "lambda": 2.0}
    run = fit(tiny(tmp_path, max_steps=3, fairness=fairness))
    assert run.manifest["mitigation"]["fairness"] == {
        "method": "penalty",
        "attribute": "race",
        "constraint": "demographic_parity",
        "lambda": 2.0,
    }
    assert run.manifest["training"]["optimizer_steps"] == 3
    card = Path(write_card(run).markdown).read_text()
    assert r"Fairness mitigation: penalty for race (demographic\_parity, λ = 2.0)" in card


def test_reweighing_with_class_weights_and_adversarial_training_run(tmp_path: Path) -> None:
    run = fit(
        tiny(
            tmp_path,
            max_steps=3,
            class_weights="balanced",
            fairness={"method": "reweighing", "attribute": "sex"},
            adversarial={
                "augment": ["char_keyboard", "gender_swap"],
                "embedding": "pgd",
                "steps": 2,
            },
        )
    )
    mitigation = run.manifest["mitigation"]
    assert mitigation["fairness"]["method"] == "reweighing"
    assert mitigation["fairness"]["attribute"] == "sex"
    assert mitigation["adversarial"]["embedding"] == "pgd"
    assert run.metrics["test"]["count"] > 0
    card = Path(write_card(run).markdown).read_text()
    assert r"Adversarial training: augmentation char\_keyboard, gender\_swap" in card


@pytest.mark.slow  # two DP runs and a resume: ~100 s; `make test-slow`
def test_dp_run_resumed_from_a_checkpoint_matches_the_uninterrupted_run(tmp_path: Path) -> None:
    privacy = {"noise_multiplier": 0.8}
    straight = fit(tiny(tmp_path / "a", epochs=2, privacy=privacy))
    killed = fit(tiny(tmp_path / "b", epochs=2, privacy=privacy, keep_checkpoints=True))
    for name in ("manifest.json", "metrics.json", "predictions.parquet"):
        (killed.path / name).unlink()
    shutil.rmtree(killed.path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = resume(killed.path, quiet=True)
    assert resumed.manifest["training"]["resumed_from_epoch"] == 1
    # Same steps, same Poisson batches, same noise draws: the same run to float rounding. (Unlike
    # non-private runs it is not bit-identical: validation loss differs in the 7th digit; the
    # cause inside Opacus's per-example path is not yet found.)
    for a, b in zip(resumed.metrics["history"], straight.metrics["history"], strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
            elif key != "per_class":
                assert a[key] == b[key], key
    assert resumed.manifest["training"]["privacy"] == straight.manifest["training"]["privacy"]
