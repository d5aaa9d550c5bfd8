"""Batch orders for training: shuffled, length-grouped (tokenising and padding are in
:mod:`ethos.models.encoding`, shared with inference).

Padding every text to max_length wastes most of the compute on short inputs (COMPAS records are
~40 tokens against a 64 limit; PubMedQA questions are short, passages long). Grouping similar
lengths into a batch and padding only to the longest in that batch keeps the matrix small.
"""

from __future__ import annotations

import numpy as np

from ethos.models.encoding import Encoded, collate, encode, iterate, sequential_order

__all__ = [
    "Encoded",
    "collate",
    "encode",
    "iterate",
    "length_grouped_order",
    "sequential_order",
    "shuffled_order",
]


def length_grouped_order(
    lengths: np.ndarray, batch_size: int, generator: np.random.Generator
) -> list[np.ndarray]:
    """Batches of indices: shuffle, sort by length inside chunks of 50 batches, shuffle batches.

    Randomness survives (which examples meet, and batch order), while each batch holds texts of
    similar length, so padding stays small.
    """
    order = generator.permutation(len(lengths))
    chunk = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        piece = order[start : start + chunk]
        piece = piece[np.argsort(-lengths[piece], kind="stable")]
        batches.extend(piece[i : i + batch_size] for i in range(0, len(piece), batch_size))
    return [batches[i] for i in generator.permutation(len(batches))]


def shuffled_order(n: int, batch_size: int, generator: np.random.Generator) -> list[np.ndarray]:
    order = generator.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]
