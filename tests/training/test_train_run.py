"""A real (tiny-budget) fine-tuning run of the bundled MiniLM, and everything it hands on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cli_helpers import run_ethos
from ethos import ConfigError, DataError, ModelError, RunConfig
from ethos.datasets import compas
from ethos.models.predict_file import predict_file
from ethos.rundir import RunDir
from ethos.training import train


def tiny_config(tmp: Path, **train_overrides: object) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": 240, "min_group_size": 1},
            "model": {"name": "default", "max_length": 32},
            "train": {"epochs": 1, "batch_size": 16, "max_steps": 4, **train_overrides},
            "output_dir": str(tmp),
            "seed": 7,
        }
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    return train(tiny_config(tmp_path_factory.mktemp("runs")), quiet=True)


def test_run_directory_holds_everything_later_stages_need(run: RunDir) -> None:
    names = {p.name for p in run.path.iterdir()}
    assert {"model", "config.yaml", "manifest.json", "metrics.json", "predictions.parquet"} <= names
    assert not [p for p in run.path.parent.iterdir() if p.name.startswith(".")]
    manifest = run.manifest
    assert len(manifest["data"]["fingerprint"]) == 64
    assert len(manifest["config_hash"]) == 64
    assert len(manifest["model"]["weights_sha256"]) == 64
    assert manifest["training"]["optimizer_steps"] == 4
    assert manifest["training"]["tokens_seen"] > 0
    assert manifest["data"]["text_includes_sensitive"] is False
    assert {"torch", "transformers", "accelerate", "python"} <= set(manifest["versions"])
    assert manifest["seed"] == 7
    assert "RunDir" in repr(run)


def test_metrics_include_both_baselines(run: RunDir) -> None:
    metrics = run.metrics
    for part in ("validation", "test"):
        for key in ("accuracy", "macro_f1", "auroc", "per_class"):
            assert key in metrics[part]
        assert set(metrics["baselines"]) == {"majority", "tfidf_logreg"}
        majority = metrics["baselines"]["majority"][part]
        assert majority["macro_f1"] < 0.5  # one class predicted everywhere
    assert metrics["test"]["per_class"]["1"]["support"] > 0


def test_predictions_cover_held_out_rows_with_groups(run: RunDir) -> None:
    predictions = run.predictions()
    assert set(predictions["split"]) == {"validation", "test"}
    assert {"group_race", "group_sex", "group_age_cat", "prob_0", "prob_1"} <= set(predictions)
    assert np.allclose(predictions[["prob_0", "prob_1"]].sum(axis=1), 1.0)


def test_reloaded_model_predicts_like_ethos_predict(run: RunDir, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rows = compas().head(25)
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    written = predict_file(run, source)
    scored = pd.read_csv(written)
    assert len(scored) == 25
    assert list(scored.columns[: len(rows.columns)]) == list(rows.columns)

    model = AutoModelForSequenceClassification.from_pretrained(run.model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(run.model_dir)
    from ethos.data.records import records_to_text

    config = json.loads(json.dumps(run.manifest))
    assert config["data"]["text_fields"][0] == "age"
    texts = records_to_text(
        rows,
        config["data"]["text_fields"],
        field_names={
            "juv_fel_count": "juvenile felonies",
            "juv_misd_count": "juvenile misdemeanors",
            "juv_other_count": "other juvenile offences",
            "priors_count": "prior offences",
            "c_charge_degree": "charge degree",
            "c_charge_desc": "charge",
        },
    )
    with torch.no_grad():
        batch = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
        probabilities = torch.softmax(model(**batch).logits, dim=-1).numpy()
    assert np.allclose(probabilities[:, 1], scored["prob_1"].to_numpy(), atol=1e-5)


def test_predict_bad_inputs_leave_nothing_behind(run: RunDir, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="has no rows"):
        predict_file(run, empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("age,priors_count\n")
    with pytest.raises(DataError, match="lacks the column"):
        predict_file(run, header_only)
    with pytest.raises(DataError, match="does not exist"):
        predict_file(run, tmp_path / "absent.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "header.csv"]


def test_unknown_model_path_is_a_clear_error(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    config = config.model_copy(
        update={"model": config.model.model_copy(update={"name": "./no/such/model"})}
    )
    with pytest.raises(ModelError, match=r"(?s)does not exist.*model.name: default"):
        train(config, quiet=True)
    hub = config.model_copy(update={"model": config.model.model_copy(update={"name": "org/x"})})
    with pytest.raises(ModelError, match="hub is off"):
        train(hub, quiet=True)
    assert not list(tmp_path.iterdir())


def test_qa_task_on_a_classification_table_is_refused(tmp_path: Path) -> None:
    config = tiny_config(tmp_path).model_copy(update={"task": "extractive_qa"})
    with pytest.raises(ConfigError, match="extractive_qa needs a SQuAD-format JSON file"):
        train(config, quiet=True)
    assert not list(tmp_path.iterdir())


def test_train_cli_reports_baselines(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "data: {source: german, sample: 120, min_group_size: 1}\n"
        "model: {max_length: 32}\n"
        "train: {epochs: 1, batch_size: 16, max_steps: 2}\n"
        f"output_dir: {tmp_path / 'runs'}\n"
    )
    result = run_ethos("train", str(config), "--quiet", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "tfidf_logreg" in result.stdout and "majority" in result.stdout
    assert "run directory:" in result.stdout
    # Two optimizer steps on 120 rows learn little: metrics.json says whether the model beats
    # its baselines, and the terminal warns when it does not.
    [manifest] = (tmp_path / "runs").glob("*/manifest.json")
    test = json.loads((manifest.parent / "metrics.json").read_text())["test"]
    assert isinstance(test["informative"], bool) and isinstance(test["reasons"], list)
    warned = "warning: the model is not informative" in result.stderr
    assert warned == (not test["informative"])
    if not test["informative"]:
        assert test["reasons"] and test["reasons"][0] in result.stderr
