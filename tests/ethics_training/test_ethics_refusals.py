"""Bad ethics options fail with a clear message before any training, and leave no run behind."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ethos import ConfigError, ModelError, RunConfig
from ethos.config import load_config
from ethos.models.resolve import resolve_model_dir
from ethos.training import train


def config(tmp: Path, data: dict[str, Any] | None = None, **train_options: Any) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": data or {"source": "compas", "sample": 200, "min_group_size": 1},
            "model": {"max_length": 32},
            "train": {"epochs": 1, "batch_size": 16, "max_steps": 2, **train_options},
            "output_dir": str(tmp / "runs"),
        }
    )


def refused(cfg: RunConfig, tmp: Path, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        train(cfg, quiet=True)
    runs = tmp / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a refused run left files behind"


@pytest.mark.parametrize(
    ("section", "pattern"),
    [
        ("privacy: {epsilon: 0}", r"train\.privacy\.epsilon.*greater than 0"),
        ("privacy: {epsilon: -3}", r"train\.privacy\.epsilon.*greater than 0"),
        ("privacy: {}", r"exactly one of epsilon.*noise_multiplier"),
        ("privacy: {epsilon: 8, noise_multiplier: 1.0}", r"exactly one of epsilon"),
        ("privacy: {noise_multiplier: .nan}", r"noise_multiplier"),
        ("privacy: {noise_multiplier: 0}", r"train\.privacy\.noise_multiplier.*greater than 0"),
        ("privacy: {epsilon: 8, delta: 1.5}", r"train\.privacy\.delta"),
        ("privacy: {epsilon: 5000}", r"(?s)epsilon 5000 is above 1000.*epsilon: \.inf"),
        ("fairness: {method: penalty, lambda: -0.5}", r"train\.fairness\.lambda.*greater than or"),
        ("fairness: {method: penalty, lambda: .inf}", r"train\.fairness\.lambda"),
        ("fairness: {method: dance}", r"train\.fairness\.method"),
        ("fairness: {method: penalty, lamda: 1}", r"did you mean 'lambda'"),
        ("adversarial: {embedding: fgm, epsilon: 0}", r"train\.adversarial\.epsilon"),
    ],
)
def test_bad_values_fail_when_the_config_is_read(
    tmp_path: Path, section: str, pattern: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"data: {{source: compas}}\ntrain:\n  {section}\n")
    with pytest.raises(ConfigError, match=pattern):
        load_config(path)


def test_fairness_without_a_sensitive_attribute(tmp_path: Path) -> None:
    table = tmp_path / "loans.csv"
    pd.DataFrame(
        {
            "note": [f"applicant {i} asks for {i * 100} dollars" for i in range(60)],
            "approved": [i % 2 for i in range(60)],
        }
    ).to_csv(table, index=False)
    data = {"source": str(table), "text_field": "note", "label": "approved"}
    refused(
        config(tmp_path, data, fairness={"method": "reweighing"}),
        tmp_path,
        ConfigError,
        r"(?s)needs a sensitive attribute.*data\.sensitive",
    )


def test_fairness_attribute_that_is_not_a_group_column(tmp_path: Path) -> None:
    refused(
        config(tmp_path, fairness={"method": "penalty", "attribute": "shoe_size"}),
        tmp_path,
        ConfigError,
        r"(?s)'shoe_size' is not one of the data's group columns.*race",
    )


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        (
            {"privacy": {"epsilon": 4}, "fairness": {"method": "penalty"}},
            r"(?s)penalty cannot be combined with train\.privacy.*reweighing or thresholds",
        ),
        (
            {"privacy": {"epsilon": 4}, "adversarial": {"embedding": "pgd"}},
            r"(?s)embedding-space adversarial.*privacy",
        ),
        (
            {"privacy": {"epsilon": 4}, "gradient_accumulation_steps": 2},
            r"gradient_accumulation_steps",
        ),
        (
            {"adversarial": {"augment": ["typo"]}},
            r"(?s)unknown perturbation families.*char_keyboard",
        ),
        ({"adversarial": {}}, r"asks for nothing"),
    ],
)
def test_contradictory_options_are_refused(
    tmp_path: Path, options: dict[str, Any], pattern: str
) -> None:
    refused(config(tmp_path, **options), tmp_path, ConfigError, pattern)


def test_a_noise_multiplier_too_small_to_mean_anything_is_refused(tmp_path: Path) -> None:
    """Near-zero noise would spend an astronomical epsilon, and the PRV accountant would then
    take minutes to say so after training; the run is refused before it starts."""
    refused(
        config(tmp_path, privacy={"noise_multiplier": 0.01}),
        tmp_path,
        ConfigError,
        r"(?s)noise_multiplier 0\.01 is too small.*epsilon .* above 1000",
    )


def test_threshold_and_penalty_methods_need_a_binary_label(tmp_path: Path) -> None:
    table = tmp_path / "triage.csv"
    pd.DataFrame(
        {
            "note": [f"patient {i} reports pain level {i % 7}" for i in range(90)],
            "sex": ["f", "m"] * 45,
            "urgency": ["low", "mid", "high"] * 30,
        }
    ).to_csv(table, index=False)
    data = {
        "source": str(table),
        "text_field": "note",
        "label": "urgency",
        "sensitive": ["sex"],
        "min_group_size": 1,
    }
    refused(
        config(tmp_path, data, fairness={"method": "penalty"}),
        tmp_path,
        ConfigError,
        r"(?s)needs a binary label.*3 classes.*reweighing",
    )


def test_fairness_on_a_question_answering_run(tmp_path: Path) -> None:
    cfg = RunConfig.model_validate(
        {
            "data": {"source": "squad_tiny"},
            "task": "extractive_qa",
            "train": {"privacy": {"epsilon": 3}},
            "output_dir": str(tmp_path / "runs"),
        }
    )
    refused(cfg, tmp_path, ConfigError, r"train\.privacy is available for classification runs")


@pytest.fixture(scope="module")
def length_first_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised XLNet with MiniLM's tokenizer: XLNet runs length-first, so
    Opacus's hooks cannot give its weights one gradient per example."""
    from transformers import XLNetConfig, XLNetForSequenceClassification

    out = tmp_path_factory.mktemp("xlnet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = XLNetForSequenceClassification(
            XLNetConfig(d_model=16, n_layer=1, n_head=2, d_inner=32, vocab_size=30522)
        )
        model.save_pretrained(out)
    source = resolve_model_dir("default")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, out / name)
    return out


def test_dp_with_a_model_opacus_cannot_handle(tmp_path: Path, length_first_model: Path) -> None:
    cfg = config(tmp_path, privacy={"epsilon": 8}).model_copy(
        update={
            "model": RunConfig.model_validate(
                {
                    "data": {"source": "compas"},
                    "model": {"name": str(length_first_model), "max_length": 32},
                }
            ).model
        }
    )
    refused(
        cfg,
        tmp_path,
        ModelError,
        r"(?s)Opacus cannot compute per-example gradients.*mask_emb.*train\.privacy",
    )
