"""Multiple-choice models: each option scored as one sequence, a softmax over the options.

A question with K options becomes K sequences ``[CLS] context [SEP] question option [SEP]`` (or
``[CLS] question option [SEP]`` without a context: the question-only baseline), and
``AutoModelForMultipleChoice`` gives one logit per sequence; the loss is the cross-entropy of the
K logits against the right option. When a sequence is longer than ``max_length`` the context is
cut first (its end); in the rare case that the question and option alone do not fit, they are cut
from their start to half the room first (and a question-only sequence from its start), so the
option's words, which tell the sequences apart, are kept.

Sequences are tokenised once without padding; a batch of questions is padded to its own longest
sequence as a ``[questions, K, tokens]`` tensor (:func:`collate_choices`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ethos.errors import ModelError
from ethos.models.encoding import sequential_order


@dataclass(frozen=True)
class ChoiceEncoded:
    """Token ids per question: K unpadded id lists each (one per option), and the labels."""

    input_ids: list[list[list[int]]]
    token_type_ids: list[list[list[int]]] | None
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_options(self) -> int:
        return len(self.input_ids[0]) if self.input_ids else 0

    def lengths(self) -> np.ndarray:
        """The longest option sequence of each question (what its batch is padded to)."""
        return np.fromiter(
            (max((len(ids) for ids in question), default=0) for question in self.input_ids),
            dtype=np.int64,
            count=len(self.input_ids),
        )


def load_choice_model(name: str) -> Any:
    """A pretrained encoder with a fresh multiple-choice head (one logit per option)."""
    from transformers import AutoModelForMultipleChoice

    from ethos.models.classifier import load_with_fresh_head

    return load_with_fresh_head(
        AutoModelForMultipleChoice,
        name,
        task="multiple choice",
        hint="use model.name: default or a local Hugging Face encoder directory (BERT-like)",
    )


@contextmanager
def _truncation_side(tokenizer: Any, side: str) -> Iterator[None]:
    before = getattr(tokenizer, "truncation_side", "right")
    tokenizer.truncation_side = side
    try:
        yield
    finally:
        tokenizer.truncation_side = before


def encode_choices(
    tokenizer: Any,
    contexts: Sequence[str] | None,
    questions: Sequence[str],
    options: Sequence[Sequence[str]],
    labels: np.ndarray,
    *,
    max_length: int,
) -> ChoiceEncoded:
    """Tokenise every (context, question + option) sequence, the context truncated first.

    ``options[i]`` are question ``i``'s K option texts (the same K for every question);
    ``contexts`` None encodes the question and option alone.
    """
    if len(questions) != len(options) or (contexts is not None and len(contexts) != len(options)):
        raise ValueError("contexts, questions and options must have one entry per question")
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and max_length > model_max:
        raise ModelError(
            f"max_length {max_length} is longer than the model accepts ({model_max} tokens)",
            hint=f"set model.max_length to at most {model_max}",
        )
    if not questions:
        return ChoiceEncoded([], None, np.asarray(labels, dtype=np.int64))
    k = len(options[0])
    seconds = [f"{q} {o}" for q, choice in zip(questions, options, strict=True) for o in choice]
    if contexts is None:
        with _truncation_side(tokenizer, "left"):  # keep the option at the end
            out = tokenizer(seconds, truncation=True, max_length=max_length, padding=False)
        ids, types = list(out["input_ids"]), out.get("token_type_ids")
        types = list(types) if types else None
    else:
        firsts = [c for c in contexts for _ in range(k)]
        ids, types = _encode_pairs(tokenizer, firsts, seconds, max_length)
    return ChoiceEncoded(
        [ids[i : i + k] for i in range(0, len(ids), k)],
        None if types is None else [types[i : i + k] for i in range(0, len(types), k)],
        np.asarray(labels, dtype=np.int64),
    )


def _encode_pairs(
    tokenizer: Any, firsts: list[str], seconds: list[str], max_length: int
) -> tuple[list[list[int]], list[list[int]] | None]:
    """(context, question + option) pairs, the context cut first; a second text that does not
    fit beside a few context tokens is first cut from its start to half the room."""
    special = int(tokenizer.num_special_tokens_to_add(pair=True))
    room = max(max_length - special, 2)
    lengths = [
        len(x)
        for x in tokenizer(seconds, add_special_tokens=False, padding=False, verbose=False)[
            "input_ids"
        ]
    ]
    seconds = list(seconds)
    for row in np.flatnonzero(np.asarray(lengths, dtype=np.int64) >= room):
        seconds[row] = _keep_end(tokenizer, seconds[row], room // 2)
    try:
        out = tokenizer(
            firsts, seconds, truncation="only_first", max_length=max_length, padding=False
        )
    except Exception as exc:  # the Rust tokenizer raises a bare Exception for truncation
        raise ModelError(
            f"the questions cannot be fitted into model.max_length {max_length} tokens: {exc}",
            hint="raise model.max_length",
        ) from None
    types = out.get("token_type_ids")
    return [list(ids) for ids in out["input_ids"]], [list(t) for t in types] if types else None


def _keep_end(tokenizer: Any, text: str, budget: int) -> str:
    """``text`` cut from its start to at most ``budget`` tokens (an option ends the text)."""
    for _ in range(4):  # a cut inside a word can re-tokenise a token longer
        if getattr(tokenizer, "is_fast", False):
            offsets = tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )["offset_mapping"]
            if len(offsets) <= budget:
                return text
            text = text[offsets[len(offsets) - budget][0] :]
        else:
            ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
            if len(ids) <= budget:
                return text
            text = tokenizer.decode(ids[-budget:])
        budget = max(1, budget - 1)
    return text


def collate_choices(
    data: ChoiceEncoded, indices: np.ndarray, pad_id: int
) -> dict[str, torch.Tensor]:
    """Questions ``indices`` as ``[batch, K, longest]`` tensors, right-padded, with labels."""
    k = max(data.n_options, 1)
    width = max((len(ids) for i in indices for ids in data.input_ids[i]), default=1)
    input_ids = torch.full((len(indices), k, width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(indices), k, width), dtype=torch.long)
    types = None if data.token_type_ids is None else torch.zeros_like(input_ids)
    for b, i in enumerate(indices):
        for o, ids in enumerate(data.input_ids[i]):
            input_ids[b, o, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[b, o, : len(ids)] = 1
            if types is not None and data.token_type_ids is not None:
                row_types = data.token_type_ids[i][o]
                types[b, o, : len(row_types)] = torch.tensor(row_types, dtype=torch.long)
    batch = {"input_ids": input_ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    batch["labels"] = torch.as_tensor(data.labels[indices], dtype=torch.long)
    return batch


def choice_probabilities(
    model: torch.nn.Module, data: ChoiceEncoded, *, batch_size: int, pad_id: int
) -> np.ndarray:
    """Softmax over each question's options, (questions, K) float64, in the data's order.

    ``batch_size`` counts questions; batches are sorted by length so padding stays small.
    """
    model.eval()
    device = next(model.parameters()).device
    out = np.zeros((len(data), data.n_options), dtype=np.float64)
    with torch.inference_mode():
        for indices in sequential_order(data.lengths(), batch_size):
            batch = collate_choices(data, indices, pad_id)
            inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            logits = model(**inputs).logits.float()
            out[indices] = torch.softmax(logits, dim=-1).cpu().numpy()
    return out
