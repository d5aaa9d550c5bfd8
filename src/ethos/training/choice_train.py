"""Multiple-choice questions through the one training loop (``task: multiple_choice``).

Each question is K sequences scored by ``AutoModelForMultipleChoice``; the loss is the
cross-entropy of the K option logits against the right option, per question, and each epoch is
judged by validation accuracy (and loss). The run's predictions hold every validation and test
question with its chosen option, the probability of each option and, when the data has them, the
BBQ columns the audit's ``qa_bias`` section scores bias from (:mod:`ethos.audit.qa_bias`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ethos.config import RunConfig
from ethos.data.choices import ChoiceDataset, check_choice_source, load_choices
from ethos.errors import ConfigError
from ethos.models.classifier import load_tokenizer
from ethos.models.lora import apply_lora
from ethos.models.multiple_choice import (
    ChoiceEncoded,
    choice_probabilities,
    collate_choices,
    encode_choices,
    load_choice_model,
)
from ethos.training.fitted import FitRequest, Fitted
from ethos.training.loop import Objective, train_loop

CLASSIFICATION_FIELDS = (
    "text_field",
    "text_pair_field",
    "record_fields",
    "label_names",
    "sensitive",
    "groups",
    "field_names",
    "value_names",
    "keep_columns",
    "forbidden_fields",
    "extra_train_source",
)
"""Data settings of classification runs; a multiple-choice run names its columns in
``choices:`` (and the label in ``data.label``)."""
WATCHED = ("accuracy", "loss")


def check_choice_config(config: RunConfig) -> None:
    """Refuse, with the fix, settings a multiple-choice run cannot use."""
    check_choice_source(config)
    given = [name for name in CLASSIFICATION_FIELDS if getattr(config.data, name)]
    if given:
        raise ConfigError(
            f"data.{given[0]} is a classification setting; a multiple_choice run reads its "
            "columns from the choices section",
            hint=f"remove {', '.join('data.' + g for g in given)}; name the columns in "
            "choices.context_field, choices.question_field, choices.option_fields and data.label",
        )
    train = config.train
    for name in ("fairness", "privacy", "adversarial", "canaries"):
        if getattr(train, name) is not None:
            raise ConfigError(
                f"train.{name} is available for classification runs; this run is multiple_choice",
                hint=f"remove train.{name}; the run's bias is measured by the audit's qa_bias "
                "section and limited by the policy",
            )
    if train.class_weights != "none":
        raise ConfigError(
            "train.class_weights weighs classes, and a multiple-choice run has option positions",
            hint="remove train.class_weights",
        )
    metric = train.early_stopping.metric if train.early_stopping else "accuracy"
    if metric not in WATCHED:
        raise ConfigError(
            f"train.early_stopping.metric '{metric}' is not measured on multiple-choice questions",
            hint="multiple_choice stops on accuracy or loss",
        )


def choice_loss(outputs: Any, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of each question's option logits against its right option."""
    logits = outputs.logits.float()
    return F.cross_entropy(logits, labels, reduction="none"), logits


def choice_scores(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Accuracy and mean negative log-likelihood of the right option."""
    if len(labels) == 0:
        return {"accuracy": None, "loss": None, "count": 0}
    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "accuracy": float((predicted == labels).mean()),
        "loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
        "count": len(labels),
    }


def encoded_part(tokenizer: Any, part: ChoiceDataset, config: RunConfig) -> ChoiceEncoded:
    return encode_choices(
        tokenizer,
        part.contexts,
        part.questions,
        part.options,
        part.labels,
        max_length=config.model.max_length,
    )


def fit_multiple_choice(config: RunConfig, request: FitRequest) -> Fitted:
    """Fine-tune a multiple-choice head (and the encoder, or LoRA adapters) on ``config``'s data."""
    check_choice_config(config)
    dataset = load_choices(config)
    if request.data_guard is not None:
        request.data_guard(dataset.fingerprint)
    tokenizer = load_tokenizer(config.model.name)
    model = load_choice_model(config.model.name)
    if config.train.peft is not None:
        model = apply_lora(model, config.train.peft, task="multiple_choice")
    parts = {name: dataset.part(name) for name in ("train", "validation", "test")}
    encoded = {name: encoded_part(tokenizer, part, config) for name, part in parts.items()}
    pad_id = int(tokenizer.pad_token_id or 0)
    # train.eval_batch_size counts sequences, as for classification: a question is K of them
    batch_size = max(1, config.train.eval_batch_size // max(dataset.n_options, 1))

    def probabilities(current: torch.nn.Module, name: str) -> np.ndarray:
        return choice_probabilities(current, encoded[name], batch_size=batch_size, pad_id=pad_id)

    def evaluate(current: torch.nn.Module) -> dict[str, Any]:
        return choice_scores(parts["validation"].labels, probabilities(current, "validation"))

    watched = config.train.early_stopping.metric if config.train.early_stopping else "accuracy"
    train_data: Any = encoded["train"]
    validation_data: Any = encoded["validation"]
    result = train_loop(
        model,
        train_data,
        validation_data,
        config.train,
        label_names=(),
        pad_id=pad_id,
        seed=config.seed,
        objective=Objective(
            choice_loss,
            evaluate,
            watched,
            lower_is_better=watched == "loss",
            collate=collate_choices,
        ),
        checkpoint_dir=request.checkpoint_dir,
        resume_from=request.resume_from,
        quiet=request.quiet,
    )
    metrics: dict[str, Any] = {"history": result.history}
    rows: list[pd.DataFrame] = []
    for name in ("validation", "test"):
        scored = probabilities(model, name)
        metrics[name] = choice_scores(parts[name].labels, scored)
        rows.append(choice_predictions(parts[name], scored))
    metrics["baselines"] = _baselines(parts)
    return Fitted(
        model=model,
        tokenizer=tokenizer,
        loop=result,
        metrics=metrics,
        predictions=pd.concat(rows, ignore_index=True),
        data_summary=dataset.summary(),
    )


def choice_predictions(part: ChoiceDataset, probabilities: np.ndarray) -> pd.DataFrame:
    """One row per question: id, split, label, predicted option, each option's probability and
    the BBQ columns the data has."""
    frame = pd.DataFrame(
        {
            "id": part.ids.astype(str),
            "split": part.split.astype(str),
            "label": part.labels,
            "predicted": probabilities.argmax(axis=1).astype(np.int64)
            if len(part)
            else np.zeros(0, dtype=np.int64),
        }
    )
    for k in range(part.n_options):
        frame[f"prob_{k}"] = probabilities[:, k] if len(part) else np.zeros(0)
    for column in part.bias_columns:
        values = part.table[column]
        frame[column] = values.astype("Int64") if column.endswith("_index") else values.astype(str)
    return frame


def _baselines(parts: dict[str, ChoiceDataset]) -> dict[str, dict[str, Any]]:
    """The accuracy of always choosing the option position most often right in training."""
    counts = np.bincount(parts["train"].labels, minlength=parts["train"].n_options)
    position = int(np.argmax(counts))
    return {
        "majority_option": {
            "option": position,
            **{
                name: {
                    "accuracy": float((parts[name].labels == position).mean())
                    if len(parts[name])
                    else None,
                    "count": len(parts[name]),
                }
                for name in ("validation", "test")
            },
        }
    }
