"""`ethos train`: data -> model -> loop -> run directory, with baselines side by side."""

from __future__ import annotations

import hashlib
import json
import platform
import time
import warnings
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from accelerate.utils import set_seed

from ethos.config import RunConfig
from ethos.data import Dataset, load_dataset, resolve_data_config
from ethos.errors import ConfigError
from ethos.models.classifier import load_classifier, load_tokenizer
from ethos.models.resolve import resolve_model_dir
from ethos.models.tokens import counter_for
from ethos.rundir import (
    CONFIG,
    MANIFEST,
    METRICS,
    MODEL,
    PREDICTIONS,
    RunDir,
    atomic_directory,
    write_json,
)
from ethos.training.baselines import majority_baseline, tfidf_baseline
from ethos.training.batching import encode
from ethos.training.loop import predict_proba, train_loop
from ethos.training.metrics import classification_metrics

PACKAGES = ("ethos", "torch", "transformers", "accelerate", "peft", "scikit-learn", "numpy")


def config_hash(config: RunConfig) -> str:
    """sha256 of the resolved config's canonical JSON."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _weights_sha256(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _check_task(config: RunConfig) -> None:
    if config.task != "classification":
        raise ConfigError(
            f"task '{config.task}' cannot be trained on data.source '{config.data.source}' "
            "(a classification table)",
            hint="use task: classification, or a SQuAD-format JSON file for extractive_qa",
        )


def _predictions_frame(dataset: Dataset, probabilities: np.ndarray) -> pd.DataFrame:
    names = list(dataset.label_names)
    frame = pd.DataFrame(
        {
            "id": dataset.ids.astype(str),
            "split": dataset.split.astype(str),
            "label": [names[i] for i in dataset.labels],
            "predicted_label": [names[i] for i in probabilities.argmax(axis=1)],
        }
    )
    for i, name in enumerate(names):
        frame[f"prob_{name}"] = probabilities[:, i]
    groups = dataset.groups.add_prefix("group_").astype(str)
    return pd.concat([frame, groups], axis=1)


def train(config: RunConfig, *, quiet: bool = False, run_name: str | None = None) -> RunDir:
    """Train one run described by ``config`` and return its run directory."""
    _check_task(config)
    config = config.model_copy(update={"data": resolve_data_config(config.data)})
    started = time.perf_counter()
    set_seed(config.seed)
    tokenizer = load_tokenizer(config.model.name)

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        dataset = load_dataset(
            config.data, max_length=config.model.max_length, count_tokens=counter_for(tokenizer)
        )
    model = load_classifier(config.model.name, dataset.label_names)
    parts = {name: dataset.part(name) for name in ("train", "validation", "test")}
    encoded = {
        name: encode(tokenizer, p.texts, p.text_pairs, p.labels, max_length=config.model.max_length)
        for name, p in parts.items()
    }
    pad_id = int(tokenizer.pad_token_id or 0)
    result = train_loop(
        model,
        encoded["train"],
        encoded["validation"],
        config.train,
        label_names=dataset.label_names,
        pad_id=pad_id,
        seed=config.seed,
        quiet=quiet,
    )

    # Held-out parts only: predicting the training rows would double the cost of a CPU run.
    held_out = dataset.split != "train"
    scored = np.flatnonzero(held_out)
    probabilities = np.full((len(dataset), len(dataset.label_names)), np.nan)
    for name in ("validation", "test"):
        probabilities[dataset.split == name] = predict_proba(
            model, encoded[name], batch_size=config.train.eval_batch_size, pad_id=pad_id
        )
    metrics: dict[str, Any] = {"history": result.history, "baselines": {}}
    for name in ("validation", "test"):
        mask = dataset.split == name
        metrics[name] = classification_metrics(
            dataset.labels[mask], probabilities[mask], dataset.label_names
        )
    train_part = parts["train"]
    for name in ("validation", "test"):
        part = parts[name]
        metrics["baselines"].setdefault("majority", {})[name] = majority_baseline(
            train_part.labels, part.labels, dataset.label_names
        )
        metrics["baselines"].setdefault("tfidf_logreg", {})[name] = tfidf_baseline(
            (train_part.texts, train_part.text_pairs, train_part.labels),
            (part.texts, part.text_pairs, part.labels),
            dataset.label_names,
            seed=config.seed,
        )

    created = datetime.now(UTC)
    chash = config_hash(config)
    run_id = run_name or f"{created:%Y%m%d-%H%M%S}-{dataset.name.split('.')[0]}-{chash[:8]}"
    final = Path(config.output_dir) / run_id
    with atomic_directory(final) as staging:
        model_dir = staging / MODEL
        model.save_pretrained(model_dir, safe_serialization=True)
        tokenizer.save_pretrained(model_dir)
        (staging / CONFIG).write_text(
            yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
        )
        predictions = _predictions_frame(dataset, probabilities).iloc[scored]
        predictions.to_parquet(staging / PREDICTIONS, index=False)
        write_json(staging / METRICS, metrics)
        training = asdict(result)
        training.pop("history")
        training.pop("best_validation")
        manifest = {
            "run_id": run_id,
            "created_utc": created.isoformat(),
            "task": config.task,
            "config_hash": chash,
            "seed": config.seed,
            "data": dataset.summary(),
            "model": {
                "name": config.model.name,
                "resolved": str(resolve_model_dir(config.model.name)),
                "weights_sha256": _weights_sha256(model_dir),
                "parameters": sum(p.numel() for p in model.parameters()),
                "trainable_parameters": sum(
                    p.numel() for p in model.parameters() if p.requires_grad
                ),
                "max_length": config.model.max_length,
            },
            "training": training,
            "device": str(next(model.parameters()).device),
            "torch_threads": torch.get_num_threads(),
            "wall_seconds": round(time.perf_counter() - started, 3),
            "versions": _versions(),
        }
        write_json(staging / MANIFEST, manifest)
    return RunDir.open(final)
