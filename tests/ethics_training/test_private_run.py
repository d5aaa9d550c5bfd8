"""A differentially private LoRA fine-tune of the default model on COMPAS, end to end.

The run must move only adapter and head weights, stay within its privacy budget, and hand
epsilon on to the manifest, the audit and the model card. That it learns (beats the majority class
at a generous epsilon) is the first test below.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ethos import RunConfig
from ethos.audit.runner import audit_run
from ethos.governance.card import write_card
from ethos.models.classifier import load_classifier_from_dir
from ethos.models.resolve import resolve_model_dir
from ethos.rundir import RunDir
from ethos.training import train

# The whole module is slow (a DP + LoRA run of ~40 s, then audit and card): `make test-slow`.
pytestmark = pytest.mark.slow

TARGET_EPSILON = 50.0  # generous: the test is that DP-SGD with LoRA learns at all


def dp_lora_config(out: Path, **data: object) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": {"source": "compas", "min_group_size": 1, **data},
            "model": {"max_length": 48},
            "train": {
                "epochs": 2,
                "batch_size": 32,
                # 5e-3 broke these adapters even without privacy (test AUROC 0.53).
                "learning_rate": 1e-3,
                "warmup_ratio": 0.0,
                # Adapters on every linear layer, the pooler included: a frozen pooler leaves
                # too little for query/value adapters alone to move in 2 epochs.
                "peft": {"r": 8, "target_modules": ["query", "key", "value", "dense"]},
                # C near the per-example gradient norm (~3.8 at the start, mostly the head's):
                # at C = 1 every gradient is cut to one length, the loss acts like L1 on the
                # probabilities, and the head drifts to all-majority decisions (docs, "Choosing C").
                "privacy": {"epsilon": TARGET_EPSILON, "delta": 1e-5, "max_grad_norm": 4.0},
            },
            "output_dir": str(out),
            "seed": 3,
        }
    )


def fit(config: RunConfig) -> RunDir:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(config, quiet=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    return fit(dp_lora_config(tmp_path_factory.mktemp("dp"), sample=240))


def test_dp_lora_run_learns(tmp_path: Path) -> None:
    """The requirement: a DP + LoRA run beats the majority class at a generous epsilon."""
    run = fit(dp_lora_config(tmp_path, sample=1500))
    test = run.metrics["test"]
    majority = run.metrics["baselines"]["majority"]["test"]
    assert test["auroc"] > 0.6
    assert test["accuracy"] > majority["accuracy"]


def test_budget_is_kept_and_recorded(run: RunDir) -> None:
    privacy = run.manifest["training"]["privacy"]
    assert 0 < privacy["epsilon"] <= TARGET_EPSILON + 1e-6
    assert privacy["epsilon"] > 0.9 * TARGET_EPSILON  # sigma solved for the budget, not padded
    assert privacy["frozen_for_privacy"] == []  # LoRA had already frozen the embeddings
    assert privacy["delta"] == 1e-5
    assert privacy["steps"] == run.manifest["training"]["optimizer_steps"]
    n_train = run.manifest["data"]["split_counts"]["train"]
    assert privacy["sample_rate"] == pytest.approx(32 / n_train)
    assert privacy["sampling"] == "poisson" and privacy["accountant"] == "prv"
    assert privacy["noise_multiplier"] > 0


def test_only_adapter_and_head_weights_change(run: RunDir) -> None:
    saved = load_file(str(run.model_dir / "adapter_model.safetensors"))
    assert saved and all("lora_" in k or "classifier" in k for k in saved), sorted(saved)[:5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = load_classifier_from_dir(run.model_dir, base_model="default")
    base = load_file(str(next(resolve_model_dir("default").glob("*.safetensors"))))
    trained = {k.removeprefix("base_model.model."): v for k, v in model.state_dict().items()}
    compared = 0
    for name, tensor in trained.items():
        plain = name.replace(".base_layer", "").removeprefix("bert.")
        if "lora_" in name or "classifier" in name or plain not in base:
            continue
        assert torch.equal(tensor, base[plain]), f"{name} moved under DP + LoRA"
        compared += 1
    assert compared > 50  # the frozen encoder was actually compared


def test_audit_and_card_carry_epsilon(run: RunDir) -> None:
    result = audit_run(run, checks=["privacy"], replace=True)
    section = json.loads((result.path / "audit.json").read_text())["privacy"]
    assert section["epsilon"] == pytest.approx(run.manifest["training"]["privacy"]["epsilon"])
    card = write_card(RunDir.open(run.path))
    text = Path(card.markdown).read_text()
    assert "Differential privacy: trained with ε =" in text
    assert "DP-SGD: noise multiplier" in text
