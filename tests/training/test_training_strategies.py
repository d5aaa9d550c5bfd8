"""Every registered training strategy, run through the same contract (like the audit checks in
tests/audit/test_audit_protocol.py).

Each is built from a tiny config by its registry entry, must declare the manifest entries it
writes and write exactly those, must change what a tiny model learns in two optimizer steps, must
leave no hooks behind, and must give the same weights for the same seed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from ethos import RunConfig
from ethos.data import Dataset
from ethos.models.inference import class_probabilities
from ethos.training.batching import encode
from ethos.training.loop import LoopResult, train_loop
from ethos.training.mitigation import STRATEGIES, build_strategies
from ethos.training.strategies import Strategy

# Opacus, with the embeddings frozen, warns that no input of the first hooked layer needs grad.
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")

LABELS = ("no", "yes")

# One tiny config per registered strategy: a new registry line needs a line here.
TINY: dict[str, dict[str, Any]] = {
    "reweighing": {"fairness": {"method": "reweighing", "attribute": "sex"}},
    "fairness_penalty": {"fairness": {"method": "penalty", "attribute": "sex", "lambda": 5.0}},
    "augmentation": {"adversarial": {"augment": ["char_swap", "casing"], "fraction": 0.5}},
    "embedding_attack": {"adversarial": {"augment": [], "embedding": "fgm", "epsilon": 0.5}},
    "dp_sgd": {"privacy": {"noise_multiplier": 1.0, "accountant": "rdp"}},
    "l2_to_start": {"l2_to_start": 100.0},
}


def config_with(options: dict[str, Any]) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": {"source": "compas", "sensitive": ["sex"], "min_group_size": 1},
            "model": {"max_length": 24},
            "train": {
                "epochs": 1,
                "batch_size": 8,
                "max_steps": 2,
                "learning_rate": 1e-3,
                "warmup_ratio": 0.0,
                "precision": "fp32",
                **options,
            },
            "seed": 0,
        }
    )


@functools.cache
def tokenizer() -> Any:
    from ethos.models.classifier import load_tokenizer

    return load_tokenizer("default")


@functools.cache
def rows() -> Dataset:
    """32 training rows in which the label leans on the group, so reweighing has work to do."""
    rng = np.random.default_rng(7)
    n = 32
    sex = np.array(["female", "male"])[rng.integers(0, 2, n)]
    labels = ((sex == "male") & (rng.random(n) < 0.8) | (rng.random(n) < 0.2)).astype(np.int64)
    charges = ["theft", "assault", "fraud", "burglary"]
    texts = [
        f"The defendant is {20 + int(rng.integers(0, 40))} years old, charged with "
        f"{charges[int(rng.integers(0, 4))]}, with {int(rng.integers(0, 6))} prior counts."
        for _ in range(n)
    ]
    return Dataset(
        name="tiny",
        source="tiny",
        ids=np.arange(n),
        texts=texts,
        labels=labels,
        label_names=LABELS,
        groups=pd.DataFrame({"sex": sex}),
        split=np.array(["train"] * n),
        fingerprint="tiny",
    )


def tiny_model() -> torch.nn.Module:
    """A one-layer BERT (the default model's architecture) with a seeded random init."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer().vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    config.num_labels = len(LABELS)
    return BertForSequenceClassification(config)


def hooks(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def run(strategies: list[Strategy], config: RunConfig) -> tuple[LoopResult, torch.nn.Module]:
    """Two optimizer steps of the tiny model on the tiny rows."""
    train = rows()
    encoded = encode(tokenizer(), train.texts, None, train.labels, max_length=24)
    model = tiny_model()
    before = hooks(model)
    result = train_loop(
        model,
        encoded,
        encoded,
        config.train,
        label_names=LABELS,
        pad_id=int(tokenizer().pad_token_id or 0),
        seed=config.seed,
        strategies=strategies,
        quiet=True,
    )
    assert hooks(model) == before, "finish must take off what prepare attached"
    return result, model


@functools.cache
def plain() -> tuple[LoopResult, torch.nn.Module]:
    return run([], config_with({}))


def build(name: str) -> Strategy:
    strategy = STRATEGIES[name](config_with(TINY[name]), rows(), tokenizer())
    assert strategy is not None, f"{name} is not built from its own tiny config"
    return strategy


def test_every_registered_strategy_has_a_tiny_config() -> None:
    assert set(TINY) == set(STRATEGIES)


def test_a_plain_config_builds_no_strategy_and_a_combined_one_builds_in_registry_order() -> None:
    assert build_strategies(config_with({}), rows(), tokenizer()) == []
    both = {**TINY["reweighing"], **TINY["augmentation"], **TINY["dp_sgd"]}
    built = build_strategies(config_with(both), rows(), tokenizer())
    assert [s.name for s in built] == ["reweighing", "augmentation", "dp_sgd"]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_follows_the_protocol(name: str) -> None:
    strategy = build(name)
    assert isinstance(strategy, Strategy)
    assert strategy.name == name
    assert STRATEGIES[name](config_with({}), rows(), tokenizer()) is None  # not asked: absent
    loop_fields = set(asdict(LoopResult()))
    assert strategy.records and isinstance(strategy.records, tuple)
    for path in strategy.records:
        section, _, key = path.partition(".")
        assert section in ("mitigation", "training") and key, path
        assert section == "mitigation" or key in loop_fields, path

    result, model = run([strategy], config_with(TINY[name]))
    assert result.optimizer_steps == 2

    # It writes what it declares, and nothing else: manifest entries, and the loop-result
    # fields that a run without strategies leaves empty.
    unset = {key for key, value in asdict(plain()[0]).items() if value is None}
    written = {f"mitigation.{key}" for key in strategy.manifest()}
    written |= {f"training.{key}" for key in unset if getattr(result, key) is not None}
    assert written == set(strategy.records)
    entries = [strategy.manifest(), *(getattr(result, key) for key in unset)]
    json.dumps(entries, allow_nan=False)

    # It changed what was learnt, and the model still predicts like any other.
    assert any(
        not torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), plain()[1].state_dict().values(), strict=True)
    )
    encoded = encode(tokenizer(), rows().texts[:4], None, rows().labels[:4], max_length=24)
    assert class_probabilities(model, encoded, batch_size=4, pad_id=0).shape == (4, 2)

    # Same seed, same weights: a second build runs the same.
    _, again = run([build(name)], config_with(TINY[name]))
    for (key, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
