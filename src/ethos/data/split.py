"""Deterministic stratified train/validation/test splits.

Rows are ordered inside each stratum by a hash of (seed, row id), not by file position, so the same
rows get the same part on any machine and even when the file's rows are reordered. Strata are the
label, or label x group when the split is group-aware, so every group appears in every part where
it has enough rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

PARTS = ("train", "validation", "test")


def _rank_key(seed: int, row_id: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{row_id}".encode()).hexdigest()


def stratified_split(
    ids: Sequence[Any] | np.ndarray,
    strata: Sequence[Any] | np.ndarray,
    *,
    validation: float,
    test: float,
    seed: int,
) -> np.ndarray:
    """Assign each row to train/validation/test, keeping each stratum's proportions.

    Within a stratum of n rows, round(n*test) go to test and round(n*validation) to validation,
    but a stratum of at least three rows always puts at least one row into each part.
    """
    parts = np.empty(len(ids), dtype=object)
    frame = pd.DataFrame({"id": list(ids), "stratum": list(strata)})
    frame["key"] = [_rank_key(seed, str(i)) for i in frame["id"]]
    for _, members in frame.groupby("stratum", sort=True):
        order = members.sort_values("key").index.to_numpy()
        n = len(order)
        n_test = round(n * test)
        n_val = round(n * validation)
        if n >= 3:
            n_test, n_val = max(n_test, 1), max(n_val, 1)
        n_test = min(n_test, n)
        n_val = min(n_val, n - n_test)
        parts[order[:n_test]] = "test"
        parts[order[n_test : n_test + n_val]] = "validation"
        parts[order[n_test + n_val :]] = "train"
    return parts


def stratified_sample(
    ids: Sequence[Any] | np.ndarray, strata: Sequence[Any] | np.ndarray, *, size: int, seed: int
) -> np.ndarray:
    """Positions of a deterministic sample of ``size`` rows keeping stratum proportions."""
    frame = pd.DataFrame({"id": list(ids), "stratum": list(strata)})
    frame["key"] = [_rank_key(seed, "sample\x1f" + str(i)) for i in frame["id"]]
    fraction = min(1.0, size / len(frame))
    chosen: list[int] = []
    for _, members in frame.groupby("stratum", sort=True):
        take = max(1, round(len(members) * fraction))
        chosen.extend(members.sort_values("key").index[:take])
    return np.sort(np.asarray(chosen[:size]))
