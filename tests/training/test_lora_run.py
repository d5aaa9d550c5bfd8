"""LoRA through peft: few trainable weights, adapter + head saved, reloaded, and merged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cli_helpers import run_ethos
from ethos import EthosError, ModelError
from ethos.datasets import compas
from ethos.models.classifier import load_classifier
from ethos.models.export import export_model
from ethos.models.lora import apply_lora
from ethos.models.predict_file import predict_file
from ethos.rundir import RunDir
from ethos.training import train
from ethos.training.loop import parameter_groups
from run_fixtures import tiny_lora_config as lora_config


@pytest.fixture(scope="module")
def lora_run(tiny_lora_run: RunDir) -> RunDir:
    """The session's shared run (tests/conftest.py)."""
    return tiny_lora_run


def test_lora_trains_under_one_percent_and_saves_adapter_with_head(lora_run: RunDir) -> None:
    model = lora_run.manifest["model"]
    assert model["format"] == "lora-adapter"
    assert 0 < model["trainable_parameters"] < 0.01 * model["parameters"]
    files = {p.name for p in lora_run.model_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "labels.json"} <= files
    assert "model.safetensors" not in files  # no copy of the frozen base
    from safetensors.torch import load_file

    saved = load_file(str(lora_run.model_dir / "adapter_model.safetensors"))
    assert any("lora_A" in k for k in saved) and any("classifier" in k for k in saved)


def test_only_adapter_and_head_weights_change(lora_run: RunDir, tmp_path: Path) -> None:
    merged_dir = export_model(lora_run, tmp_path / "merged", merge=True)
    from transformers import AutoModelForSequenceClassification

    merged = AutoModelForSequenceClassification.from_pretrained(merged_dir)
    base = load_classifier("default", ["0", "1"])
    base_state = base.state_dict()
    changed = {
        name
        for name, tensor in merged.state_dict().items()
        if not torch.equal(tensor, base_state[name])
    }
    assert changed, "merging changed nothing"
    for name in changed:
        assert "classifier" in name or name.endswith(("query.weight", "value.weight")), name


def test_merged_export_predicts_like_the_adapter(lora_run: RunDir, tmp_path: Path) -> None:
    rows = compas().head(20)
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    scored = pd.read_csv(predict_file(lora_run, source))

    merged_dir = tmp_path / "merged"
    command = ["export", str(lora_run.path), "-o", str(merged_dir), "--merge"]
    result = run_ethos(*command, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not (merged_dir / "adapter_config.json").exists()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ethos.data.build import resolve_data_config
    from ethos.data.records import records_to_text

    data = resolve_data_config(lora_run.config.data)
    fields = [f for f in data.record_fields or [] if f not in data.sensitive]
    texts = records_to_text(rows, fields, field_names=data.field_names)
    model = AutoModelForSequenceClassification.from_pretrained(merged_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    with torch.no_grad():
        batch = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
        probabilities = torch.softmax(model(**batch).logits, dim=-1).numpy()
    assert np.allclose(probabilities[:, 1], scored["prob_1"].to_numpy(), atol=1e-4)


def test_export_refusals(lora_run: RunDir, tmp_path: Path) -> None:
    with pytest.raises(EthosError, match="pass --merge"):
        export_model(lora_run, tmp_path / "plain", merge=False)
    with pytest.raises(EthosError, match="already exists"):
        export_model(lora_run, tmp_path, merge=True)
    assert not (tmp_path / "plain").exists()


def test_unknown_lora_target_names_the_real_layers(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"(?s)q_proj.*query"):
        train(lora_config(tmp_path, target_modules=["q_proj"]), quiet=True)
    assert not list(tmp_path.iterdir())


def test_lora_config_is_validated(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        lora_config(tmp_path, r=0)
    with pytest.raises(ValidationError):
        lora_config(tmp_path, method="ia3")
    with pytest.raises(ValidationError):
        lora_config(tmp_path, head_learning_rate=0)


@pytest.mark.parametrize(("head_rate", "expected"), [(None, 1e-2), (3e-3, 3e-3)])
def test_the_fresh_head_gets_its_own_learning_rate(
    tmp_path: Path, head_rate: float | None, expected: float
) -> None:
    """At one shared rate a short LoRA run's head learns only the class prior (all-majority)."""
    config = lora_config(tmp_path, head_learning_rate=head_rate).train
    assert config.peft is not None
    model = apply_lora(load_classifier("default", ["0", "1"]), config.peft, task="classification")
    groups = parameter_groups(model, config)
    head = [g for g in groups if "lr" in g]
    assert {g["lr"] for g in head} == {expected}
    head_params = {id(p) for g in head for p in g["params"]}
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert (id(param) in head_params) == ("classifier" in name), name
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())
    plain = parameter_groups(
        load_classifier("default", ["0", "1"]), config.model_copy(update={"peft": None})
    )
    assert all("lr" not in g for g in plain) and len(plain) == 2
