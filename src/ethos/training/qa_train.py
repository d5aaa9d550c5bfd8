"""Extractive question answering: SQuAD-format data through the same loop as classification.

Each question becomes one or more windows (features); the loop trains on windows with a start/end
cross-entropy, and evaluation decodes the best span per question over its windows and scores it
with the official SQuAD exact match and F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from ethos.config import RunConfig
from ethos.data.squad import QADataset, load_squad
from ethos.errors import ConfigError
from ethos.models.classifier import load_tokenizer
from ethos.models.lora import apply_lora
from ethos.models.qa import answer_questions, load_qa_model, qa_encoded, qa_features
from ethos.models.squad_metric import exact_match_score, f1_score, squad_scores
from ethos.training.fitted import FitRequest, Fitted
from ethos.training.loop import Objective, train_loop

CLASSIFICATION_FIELDS = ("text_field", "text_pair_field", "record_fields", "label", "label_names")


def check_qa_config(config: RunConfig) -> None:
    """Refuse, with the reason, a QA run pointed at a classification table."""
    source = config.data.source
    if not source.lower().endswith((".json", ".json.gz")):
        raise ConfigError(
            f"task extractive_qa needs a SQuAD-format JSON file, but data.source is '{source}' "
            "(a classification table)",
            hint="point data.source at a SQuAD v1.1/v2.0 .json file, or use task: classification",
        )
    given = [name for name in CLASSIFICATION_FIELDS if getattr(config.data, name)]
    if given:
        raise ConfigError(
            f"data.{given[0]} is a classification setting; extractive_qa reads questions, "
            "contexts and answers from the SQuAD file itself",
            hint=f"remove {', '.join('data.' + g for g in given)} or use task: classification",
        )
    metric = config.train.early_stopping.metric if config.train.early_stopping else "f1"
    if metric not in ("exact_match", "f1"):
        raise ConfigError(
            f"train.early_stopping.metric '{metric}' is a classification metric",
            hint="extractive_qa stops on exact_match or f1",
        )


def span_loss(outputs: Any, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the start and end cross-entropies (the BERT SQuAD objective), per example."""
    start = outputs.start_logits.float()
    end = outputs.end_logits.float()
    starts = F.cross_entropy(start, labels[:, 0], reduction="none")
    ends = F.cross_entropy(end, labels[:, 1], reduction="none")
    return (starts + ends) / 2, start


def _scores(part: QADataset, answers: Sequence[str]) -> dict[str, Any]:
    predictions = {str(qid): a for qid, a in zip(part.ids, answers, strict=True)}
    return squad_scores(predictions, part.references())


def fit_extractive_qa(config: RunConfig, request: FitRequest) -> Fitted:
    """Fine-tune a span-extraction model on a SQuAD-format file."""
    check_qa_config(config)
    split = config.data.split
    dataset = load_squad(
        config.data.source, validation=split.validation, test=split.test, seed=split.seed
    )
    if request.data_guard is not None:
        request.data_guard(dataset.fingerprint)
    tokenizer = load_tokenizer(config.model.name)
    model = load_qa_model(config.model.name)
    if config.train.peft is not None:
        model = apply_lora(model, config.train.peft, task="extractive_qa")
    parts = {name: dataset.part(name) for name in ("train", "validation", "test")}
    train_features = qa_features(tokenizer, parts["train"], config, train=True)
    held_out = {
        n: qa_features(tokenizer, parts[n], config, train=False) for n in ("validation", "test")
    }
    pad_id = int(tokenizer.pad_token_id or 0)

    def evaluate(current: torch.nn.Module) -> dict[str, Any]:
        answers = answer_questions(
            current, parts["validation"], held_out["validation"], config, pad_id=pad_id
        )
        return _scores(parts["validation"], answers)

    watched = config.train.early_stopping.metric if config.train.early_stopping else "f1"
    result = train_loop(
        model,
        qa_encoded(train_features),
        qa_encoded(held_out["validation"]),
        config.train,
        label_names=(),
        pad_id=pad_id,
        seed=config.seed,
        objective=Objective(span_loss, evaluate, watched),
        checkpoint_dir=request.checkpoint_dir,
        resume_from=request.resume_from,
        quiet=request.quiet,
    )
    metrics: dict[str, Any] = {"history": result.history}
    rows: list[pd.DataFrame] = []
    for name in ("validation", "test"):
        part = parts[name]
        answers = answer_questions(model, part, held_out[name], config, pad_id=pad_id)
        metrics[name] = _scores(part, answers)
        rows.append(_predictions(part, answers))
    metrics["features"] = {
        "train": len(train_features),
        **{name: len(features) for name, features in held_out.items()},
    }
    return Fitted(
        model=model,
        tokenizer=tokenizer,
        loop=result,
        metrics=metrics,
        predictions=pd.concat(rows, ignore_index=True),
        data_summary=dataset.summary(),
    )


def _predictions(part: QADataset, answers: Sequence[str]) -> pd.DataFrame:
    golds = [[text for text, _ in a] or [""] for a in part.answers]
    pairs = list(zip(answers, golds, strict=True))
    return pd.DataFrame(
        {
            "id": part.ids.astype(str),
            "split": part.split.astype(str),
            "question": list(part.questions),
            "gold_answers": golds,
            "predicted_answer": list(answers),
            "exact_match": [max(exact_match_score(a, g) for g in gs) for a, gs in pairs],
            "f1": [max(f1_score(a, g) for g in gs) for a, gs in pairs],
        }
    )
