"""Sequence classification: encode the split, run the loop, score held-out rows, add baselines."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ethos.config import RunConfig
from ethos.data import Dataset, load_dataset
from ethos.models.classifier import load_classifier, load_tokenizer
from ethos.models.lora import apply_lora
from ethos.models.tokens import counter_for
from ethos.training.baselines import majority_baseline, tfidf_baseline
from ethos.training.batching import encode
from ethos.training.fitted import FitRequest, Fitted
from ethos.training.loop import predict_proba, train_loop
from ethos.training.metrics import classification_metrics


def predictions_frame(dataset: Dataset, probabilities: np.ndarray) -> pd.DataFrame:
    """Row id, split, group columns, label, predicted label and one probability per class."""
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


def fit_classification(config: RunConfig, request: FitRequest) -> Fitted:
    """Fine-tune a sequence classifier on ``config.data`` (already resolved)."""
    tokenizer = load_tokenizer(config.model.name)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        dataset = load_dataset(
            config.data, max_length=config.model.max_length, count_tokens=counter_for(tokenizer)
        )
    if request.data_guard is not None:
        request.data_guard(dataset.fingerprint)
    model = load_classifier(config.model.name, dataset.label_names)
    if config.train.peft is not None:
        model = apply_lora(model, config.train.peft, task="classification")
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
        checkpoint_dir=request.checkpoint_dir,
        resume_from=request.resume_from,
        quiet=request.quiet,
    )

    # Held-out parts only: predicting the training rows would double the cost of a CPU run.
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
    held_out = np.flatnonzero(dataset.split != "train")
    return Fitted(
        model=model,
        tokenizer=tokenizer,
        loop=result,
        metrics=metrics,
        predictions=predictions_frame(dataset, probabilities).iloc[held_out],
        data_summary=dataset.summary(),
    )
