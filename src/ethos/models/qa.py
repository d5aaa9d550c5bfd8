"""Extractive question answering: questions + contexts into model features, logits back into text.

A context longer than the model's window is cut into several overlapping windows ("features"):
each window holds the question, then a slice of the context, and consecutive windows share
``doc_stride`` context tokens so an answer cut by one window boundary is whole in the next. For
training, each feature gets the token positions of the gold answer, or the classifier token (index
0) when the answer is not entirely inside that window. For prediction, the best-scoring span over
all windows of an example is mapped back to characters of the context through the offset mapping.

Features are not padded: a collator pads each batch to its own longest feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ethos.config import RunConfig
from ethos.data.squad import QADataset
from ethos.errors import DataError, ModelError
from ethos.models.encoding import Encoded, iterate, sequential_order

CLS_INDEX = 0
"""Position of the classifier token, the target for "no answer in this window" (BERT-style)."""

Offsets = list[tuple[int, int] | None]


@dataclass(frozen=True, eq=False)
class QAFeatures:
    """Tokenized windows, aligned by position.

    ``example_index[f]`` is the position (in the questions/contexts given) of the example feature
    ``f`` comes from; ``offsets[f][t]`` is the ``(start, end)`` character span in the context of
    token ``t``, or ``None`` for question, special and padding tokens. ``start_positions`` and
    ``end_positions`` are the inclusive token positions of the gold answer (``CLS_INDEX`` when it
    is not inside the window), or ``None`` when no answers were given.
    """

    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    token_type_ids: list[list[int]] | None
    example_index: np.ndarray
    offsets: list[Offsets]
    start_positions: np.ndarray | None
    end_positions: np.ndarray | None

    def __len__(self) -> int:
        return len(self.input_ids)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per feature with the model inputs (and labels if any), for a collator."""
        out: list[dict[str, Any]] = []
        for f in range(len(self)):
            row: dict[str, Any] = {
                "input_ids": self.input_ids[f],
                "attention_mask": self.attention_mask[f],
            }
            if self.token_type_ids is not None:
                row["token_type_ids"] = self.token_type_ids[f]
            if self.start_positions is not None and self.end_positions is not None:
                row["start_positions"] = int(self.start_positions[f])
                row["end_positions"] = int(self.end_positions[f])
            out.append(row)
        return out


def prepare_qa_features(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    answers: Sequence[Sequence[tuple[str, int]]] | None = None,
    *,
    max_length: int,
    doc_stride: int,
) -> QAFeatures:
    """Tokenize (question, context) pairs into overlapping windows of at most ``max_length``.

    The question comes first and is never truncated; the context is cut into windows that overlap
    by ``doc_stride`` tokens. ``answers[i]`` are example ``i``'s gold ``(text, answer_start)``
    pairs: the first one is the training target, an empty list means unanswerable (target
    ``CLS_INDEX``). Needs a fast (Rust) tokenizer, which provides the offset mapping.
    """
    if len(questions) != len(contexts):
        raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
    if answers is not None and len(answers) != len(questions):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answer lists")
    if max_length <= 0 or doc_stride < 0:
        raise ValueError(f"need max_length > 0 and doc_stride >= 0, got {max_length}, {doc_stride}")
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            f"tokenizer {type(tokenizer).__name__} is not a fast tokenizer, so it has no offset "
            "mapping to locate answer spans",
            hint="use a model that ships a tokenizer.json (AutoTokenizer(..., use_fast=True))",
        )
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and max_length > model_max:
        raise ModelError(
            f"max_length {max_length} is longer than the model accepts ({model_max} tokens)",
            hint=f"set max_length to at most {model_max}",
        )
    if not questions:
        empty = np.zeros(0, dtype=np.int64)
        return QAFeatures(
            [],
            [],
            None,
            empty,
            [],
            None if answers is None else empty,
            None if answers is None else empty,
        )
    _check_room(tokenizer, questions, max_length=max_length, doc_stride=doc_stride)

    encoded = tokenizer(
        list(questions),
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    if encoded.sequence_ids(0)[CLS_INDEX] is not None:
        raise ModelError(
            f"tokenizer {type(tokenizer).__name__} does not put a special token at position "
            f"{CLS_INDEX}, which extractive QA uses as the 'no answer in this window' target",
            hint="use a BERT-style model (classifier token first), such as the default",
        )
    example_index = np.asarray(encoded["overflow_to_sample_mapping"], dtype=np.int64)
    offsets: list[Offsets] = []
    starts: list[int] = []
    ends: list[int] = []
    for f, raw in enumerate(encoded["offset_mapping"]):
        sequence_ids = encoded.sequence_ids(f)
        kept: Offsets = [
            (int(a), int(b)) if sequence_ids[t] == 1 else None for t, (a, b) in enumerate(raw)
        ]
        offsets.append(kept)
        if answers is not None:
            start, end = _answer_tokens(kept, answers[int(example_index[f])])
            starts.append(start)
            ends.append(end)
    token_type_ids = encoded.get("token_type_ids")
    return QAFeatures(
        input_ids=[list(ids) for ids in encoded["input_ids"]],
        attention_mask=[list(mask) for mask in encoded["attention_mask"]],
        token_type_ids=None if token_type_ids is None else [list(t) for t in token_type_ids],
        example_index=example_index,
        offsets=offsets,
        start_positions=None if answers is None else np.asarray(starts, dtype=np.int64),
        end_positions=None if answers is None else np.asarray(ends, dtype=np.int64),
    )


def _check_room(
    tokenizer: Any, questions: Sequence[str], *, max_length: int, doc_stride: int
) -> None:
    """Fail before tokenizing when a question leaves no room (or too little) for the context."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    lengths = [
        len(ids) for ids in tokenizer(list(questions), add_special_tokens=False)["input_ids"]
    ]
    for index, length in enumerate(lengths):
        room = max_length - specials - length
        if room <= doc_stride:
            raise DataError(
                f"question {index} is {length} tokens long, leaving {max(room, 0)} of "
                f"max_length {max_length} for the context, not more than doc_stride {doc_stride}",
                hint="raise max_length, lower doc_stride, or shorten the question",
            )


def _answer_tokens(offsets: Offsets, answers: Sequence[tuple[str, int]]) -> tuple[int, int]:
    """Inclusive token positions of the first gold answer, or CLS when it is not in the window."""
    if not answers:
        return CLS_INDEX, CLS_INDEX
    text, start_char = answers[0]
    end_char = start_char + len(text)
    context_tokens = [t for t, span in enumerate(offsets) if span is not None]
    if not context_tokens:
        return CLS_INDEX, CLS_INDEX
    first, last = context_tokens[0], context_tokens[-1]
    window_start = offsets[first]
    window_end = offsets[last]
    assert window_start is not None and window_end is not None
    if start_char < window_start[0] or end_char > window_end[1]:
        return CLS_INDEX, CLS_INDEX
    start_token = first
    for t in context_tokens:
        span = offsets[t]
        assert span is not None
        if span[0] <= start_char:
            start_token = t
        else:
            break
    end_token = last
    for t in reversed(context_tokens):
        span = offsets[t]
        assert span is not None
        if span[1] >= end_char:
            end_token = t
        else:
            break
    return start_token, end_token


def decode_best_spans(
    start_logits: np.ndarray | Sequence[np.ndarray] | Sequence[Sequence[float]],
    end_logits: np.ndarray | Sequence[np.ndarray] | Sequence[Sequence[float]],
    features: QAFeatures,
    contexts: Sequence[str],
    *,
    max_answer_tokens: int = 30,
    n_best: int = 20,
    null_score_threshold: float | None = None,
) -> list[str]:
    """The best answer text for each example, over all of its windows.

    For every feature, the ``n_best`` highest start and end logits are paired; a pair is a
    candidate when both tokens are context tokens, ``end >= start`` and the span has at most
    ``max_answer_tokens`` tokens. Its score is ``start_logit + end_logit``; the best candidate's
    characters are cut from the context. Logit rows may be longer than a feature (batch padding).

    With ``null_score_threshold`` set (SQuAD 2.0), an example answers ``""`` when its best
    no-answer score (the classifier token's start + end logit, over windows) exceeds the best
    span's score by more than the threshold. Examples with no candidate answer ``""``.
    """
    if len(start_logits) != len(features) or len(end_logits) != len(features):
        raise ValueError(
            f"{len(start_logits)} start and {len(end_logits)} end logit rows "
            f"for {len(features)} features"
        )
    if max_answer_tokens < 1 or n_best < 1:
        raise ValueError("max_answer_tokens and n_best must be at least 1")
    best_score = np.full(len(contexts), -np.inf)
    best_span: list[tuple[int, int] | None] = [None] * len(contexts)
    null_score = np.full(len(contexts), -np.inf)
    for f in range(len(features)):
        example = int(features.example_index[f])
        offsets = features.offsets[f]
        starts = np.asarray(start_logits[f], dtype=np.float64)[: len(offsets)]
        ends = np.asarray(end_logits[f], dtype=np.float64)[: len(offsets)]
        null_score[example] = max(null_score[example], starts[CLS_INDEX] + ends[CLS_INDEX])
        top_starts = np.argsort(-starts, kind="stable")[:n_best]
        top_ends = np.argsort(-ends, kind="stable")[:n_best]
        for s in top_starts:
            start_span = offsets[s]
            if start_span is None:
                continue
            for e in top_ends:
                end_span = offsets[e]
                if end_span is None or e < s or e - s + 1 > max_answer_tokens:
                    continue
                score = starts[s] + ends[e]
                if score > best_score[example]:
                    best_score[example] = score
                    best_span[example] = (start_span[0], end_span[1])
    answers: list[str] = []
    for example, span in enumerate(best_span):
        if span is None or (
            null_score_threshold is not None
            and null_score[example] - best_score[example] > null_score_threshold
        ):
            answers.append("")
        else:
            answers.append(contexts[example][span[0] : span[1]])
    return answers


def load_qa_model(name: str) -> Any:
    """A model with a span (start/end) head; a head the checkpoint lacks starts untrained."""
    from transformers import AutoModelForQuestionAnswering

    from ethos.models.classifier import load_with_fresh_head

    return load_with_fresh_head(
        AutoModelForQuestionAnswering, name, task="extractive question answering"
    )


def qa_features(tokenizer: Any, part: QADataset, config: RunConfig, *, train: bool) -> QAFeatures:
    """The windows (features) of every question of ``part``, with answer positions when
    ``train``."""
    return prepare_qa_features(
        tokenizer,
        part.questions,
        part.contexts,
        part.answers if train else None,
        max_length=config.model.max_length,
        doc_stride=config.qa.doc_stride,
    )


def qa_encoded(features: QAFeatures) -> Encoded:
    """Features as the loop's token ids; the labels are the (start, end) answer positions."""
    if features.start_positions is not None and features.end_positions is not None:
        targets = np.stack([features.start_positions, features.end_positions], axis=1)
    else:
        targets = np.zeros((len(features), 2), dtype=np.int64)
    return Encoded(features.input_ids, features.token_type_ids, targets)


@torch.no_grad()
def span_logits(
    model: torch.nn.Module, data: Encoded, *, batch_size: int, pad_id: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start and end logits per feature (each row as long as its feature), in feature order."""
    model.eval()
    device = next(model.parameters()).device
    starts: list[np.ndarray] = [np.zeros(0)] * len(data)
    ends: list[np.ndarray] = [np.zeros(0)] * len(data)
    for indices, batch in iterate(data, sequential_order(data.lengths(), batch_size), pad_id):
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        outputs = model(**inputs)
        start = outputs.start_logits.float().cpu().numpy()
        end = outputs.end_logits.float().cpu().numpy()
        for row, index in enumerate(indices):
            width = len(data.input_ids[index])
            starts[index] = start[row, :width]
            ends[index] = end[row, :width]
    return starts, ends


def answer_questions(
    model: torch.nn.Module,
    part: QADataset,
    features: QAFeatures,
    config: RunConfig,
    *,
    pad_id: int,
) -> list[str]:
    """The model's answer text for every question of ``part``."""
    if len(part) == 0:
        return []
    starts, ends = span_logits(
        model, qa_encoded(features), batch_size=config.train.eval_batch_size, pad_id=pad_id
    )
    threshold = 0.0 if part.version.startswith("2") else None
    return decode_best_spans(
        starts,
        ends,
        features,
        part.contexts,
        max_answer_tokens=config.qa.max_answer_tokens,
        n_best=config.qa.n_best,
        null_score_threshold=threshold,
    )
