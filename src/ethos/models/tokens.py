"""Token counts with the model's own tokenizer, for the long-text warning of the data layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ethos.data.build import TokenCounter
from ethos.models.classifier import load_tokenizer


def counter_for(tokenizer: Any) -> TokenCounter:
    """A function (texts, pairs) -> token counts including special tokens, untruncated."""

    def count(texts: Sequence[str], pairs: Sequence[str] | None) -> np.ndarray:
        encoded = tokenizer(
            list(texts),
            list(pairs) if pairs is not None else None,
            truncation=False,
            add_special_tokens=True,
            verbose=False,
        )["input_ids"]
        return np.array([len(ids) for ids in encoded], dtype=np.int64)

    return count


def token_counter(model_name: str) -> TokenCounter:
    """The counter of a model named in a config (default, directory or hub id)."""
    return counter_for(load_tokenizer(model_name))
