"""Sequence classification: encode the split, run the loop, score held-out rows, add baselines."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ethos.config import RunConfig
from ethos.data import Dataset, load_dataset
from ethos.data.canaries import Canaries, check_canary_count, make_canaries, with_canaries
from ethos.errors import DataError
from ethos.models.classifier import load_classifier, load_tokenizer
from ethos.models.group_thresholds import GroupThresholds, fit_group_thresholds
from ethos.models.inference import class_probabilities
from ethos.models.lora import apply_lora
from ethos.models.tokens import counter_for
from ethos.training.baselines import informativeness, majority_baseline, tfidf_baseline
from ethos.training.batching import encode
from ethos.training.ethics_options import fairness_attribute, fairness_record
from ethos.training.fitted import FitRequest, Fitted
from ethos.training.loop import train_loop
from ethos.training.metrics import classification_metrics
from ethos.training.mitigation import build_strategies
from ethos.training.strategies import Strategy


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
    empty = [name for name, part in parts.items() if len(part) == 0]
    if empty:  # training selects on validation and reports on test: none may be empty
        where = (
            f"split column '{config.data.split.column}'"
            if config.data.split.column
            else "the split"
        )
        raise DataError(
            f"{where} leaves no {' or '.join(empty)} rows",
            hint="give every part (train, validation, test) at least one row",
        )
    real_train = parts["train"]
    canaries = _canaries(config, real_train, tokenizer)
    if canaries is not None:  # training rows only: never validation, test or the baselines
        parts["train"] = with_canaries(real_train, canaries)
    encoded = {
        name: encode(tokenizer, p.texts, p.text_pairs, p.labels, max_length=config.model.max_length)
        for name, p in parts.items()
    }
    pad_id = int(tokenizer.pad_token_id or 0)
    strategies = build_strategies(config, parts["train"], tokenizer)
    result = train_loop(
        model,
        encoded["train"],
        encoded["validation"],
        config.train,
        label_names=dataset.label_names,
        pad_id=pad_id,
        seed=config.seed,
        strategies=strategies,
        checkpoint_dir=request.checkpoint_dir,
        resume_from=request.resume_from,
        quiet=request.quiet,
    )

    # Held-out parts only: predicting the training rows would double the cost of a CPU run.
    probabilities = np.full((len(dataset), len(dataset.label_names)), np.nan)
    for name in ("validation", "test"):
        probabilities[dataset.split == name] = class_probabilities(
            model, encoded[name], batch_size=config.train.eval_batch_size, pad_id=pad_id
        )
    held_out = np.flatnonzero(dataset.split != "train")
    predictions = predictions_frame(dataset, probabilities).iloc[held_out].copy()
    thresholds = _fit_thresholds(config, dataset, probabilities)
    decided: np.ndarray | None = None
    if thresholds is not None:
        attribute = thresholds.attribute
        decided = np.full(len(dataset), -1)
        decided[held_out] = thresholds.decide(
            probabilities[held_out, 1], predictions[f"group_{attribute}"], predictions["id"]
        )
        predictions["predicted_label"] = [dataset.label_names[i] for i in decided[held_out]]
    metrics: dict[str, Any] = {"history": result.history, "baselines": {}}
    for name in ("validation", "test"):
        mask = dataset.split == name
        metrics[name] = classification_metrics(
            dataset.labels[mask],
            probabilities[mask],
            dataset.label_names,
            y_pred=None if decided is None else decided[mask],
        )
    train_part = real_train
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
    for name in ("validation", "test"):
        mask = dataset.split == name
        metrics[name].update(
            informativeness(
                dataset.labels[mask],
                probabilities[mask],
                dataset.label_names,
                majority=metrics["baselines"]["majority"][name],
                y_pred=None if decided is None else decided[mask],
                seed=config.seed,
            )
        )
    return Fitted(
        model=model,
        tokenizer=tokenizer,
        loop=result,
        metrics=metrics,
        predictions=predictions,
        data_summary=dataset.summary(),
        group_thresholds=thresholds,
        extra_manifest={
            **_mitigation_manifest(strategies, config, thresholds),
            **_canary_manifest(canaries),
        },
        canaries=canaries,
    )


def _canaries(config: RunConfig, train: Dataset, tokenizer: Any) -> Canaries | None:
    """The run's canaries (``train.canaries``), drawn from the model's own vocabulary, or None.

    Refused before any training when there are more canaries than real training rows."""
    wanted = config.train.canaries
    if wanted is None:
        return None
    check_canary_count(wanted.count, len(train))
    return make_canaries(
        wanted.count,
        vocabulary=tokenizer.get_vocab(),
        label_names=train.label_names,
        seed=config.seed if wanted.seed is None else wanted.seed,
    )


def _canary_manifest(canaries: Canaries | None) -> dict[str, Any]:
    """What the manifest records about the canaries (the flags stay in canaries.json)."""
    if canaries is None:
        return {}
    return {
        "canaries": {
            "count": canaries.count,
            "included": canaries.n_included,
            "seed": canaries.seed,
            "file": "canaries.json",
            "used_by": "the privacy audit's one-run epsilon lower bound (privacy.dp_audit)",
            "excluded_from": "validation, test, the baselines and every other audit: they are "
            "training rows only",
        }
    }


def _fit_thresholds(
    config: RunConfig, dataset: Dataset, probabilities: np.ndarray
) -> GroupThresholds | None:
    """Per-group thresholds fitted on the validation part's positive-class scores."""
    fairness = config.train.fairness
    if fairness is None or fairness.method != "thresholds":
        return None
    attribute = fairness_attribute(config)
    assert attribute is not None
    valid = dataset.split == "validation"
    return fit_group_thresholds(
        probabilities[valid, 1],
        dataset.labels[valid],
        dataset.groups[attribute].astype(str).to_numpy()[valid],
        constraint=fairness.constraint,
        seed=config.seed,
        attribute=attribute,
        min_group_size=config.data.min_group_size,
        known_groups=sorted(dataset.groups[attribute].astype(str).unique()),
    )


def _mitigation_manifest(
    strategies: list[Strategy], config: RunConfig, thresholds: GroupThresholds | None
) -> dict[str, Any]:
    """What the run did about fairness and robustness, for the manifest: each strategy's entry,
    and the threshold rule fitted after training (privacy is in ``training.privacy``, with the
    epsilon spent)."""
    out: dict[str, Any] = {}
    if thresholds is not None:
        out["fairness"] = {**fairness_record(config), "decision_rule": "group_thresholds"}
    for strategy in strategies:
        out.update(strategy.manifest())
    return {"mitigation": out} if out else {}
