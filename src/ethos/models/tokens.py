"""Token counts with the model's own tokenizer, for the long-text warning of the data layer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ethos.data.build import TokenCounter
from ethos.errors import ModelError
from ethos.models.resolve import resolve_model_dir


def token_counter(model_name: str) -> TokenCounter:
    """A function (texts, pairs) -> token counts including special tokens."""
    from transformers import AutoTokenizer

    location = resolve_model_dir(model_name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(location))
    except OSError as exc:
        raise ModelError(f"cannot load the tokenizer of model '{model_name}': {exc}") from None

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
