"""Token ids for a model: tokenise once without padding, then pad each batch to its longest.

Training, ``ethos predict``, the audit and serving all feed the model through these, so a text is
truncated, tokenised and padded the same way wherever it is scored (pairs truncate the second
text first). Padding every text to max_length wastes most of the compute on short inputs (COMPAS
records are ~40 tokens against a 64 limit), so batches are padded only to their own longest row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Encoded:
    """Token ids per example, unpadded, with labels and optional per-example weights."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64)


def encode(
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    labels: np.ndarray,
    *,
    max_length: int,
) -> Encoded:
    """Tokenise with truncation (pairs truncate the second text first) and no padding."""
    out = tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation="only_second" if pairs is not None else True,
        max_length=max_length,
        padding=False,
    )
    token_types = out.get("token_type_ids")
    return Encoded(list(out["input_ids"]), list(token_types) if token_types else None, labels)


def sequential_order(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Evaluation batches sorted by length (order does not matter, padding does)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(data: Encoded, indices: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad one batch to its own longest example."""
    rows = [data.input_ids[i] for i in indices]
    width = max((len(r) for r in rows), default=1)  # an empty Poisson batch is still a step
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, row in enumerate(rows):
        ids[k, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[k, : len(row)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if data.token_type_ids is not None:
        types = torch.zeros((len(rows), width), dtype=torch.long)
        for k, i in enumerate(indices):
            row_types = data.token_type_ids[i]
            types[k, : len(row_types)] = torch.tensor(row_types, dtype=torch.long)
        batch["token_type_ids"] = types
    batch["labels"] = torch.as_tensor(data.labels[indices], dtype=torch.long)
    return batch


def iterate(
    data: Encoded, batches: Sequence[np.ndarray], pad_id: int
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    for indices in batches:
        yield indices, collate(data, indices, pad_id)
