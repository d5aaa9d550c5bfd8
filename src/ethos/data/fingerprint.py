"""A data fingerprint: sha256 over a canonical serialisation of the rows and their split.

The fingerprint is what the manifest, the model card and the ledger cite as "the data this model
saw". Canonical means independent of machine, library version and row order: each row becomes
one JSON array of plain values (strings, ints, finite floats via ``repr``, null), rows are
sorted by id, and the header names every column in a fixed order. Any change to a used cell, a
label, a group value, a row's split part or the set of rows changes the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)
    if isinstance(value, bool | int | str):
        return value
    try:
        if value != value:  # pandas NA / NaT
            return None
    except (TypeError, ValueError):
        return None
    return str(value)


def fingerprint_rows(columns: dict[str, Sequence[Any]], *, id_column: str) -> str:
    """sha256 hex digest of the columns (all the same length), rows ordered by ``id_column``."""
    names = sorted(columns)
    ids = [str(v) for v in columns[id_column]]
    digest = hashlib.sha256()
    digest.update(json.dumps({"ethos-fingerprint": 1, "columns": names}).encode())
    for position in sorted(range(len(ids)), key=ids.__getitem__):
        row = [_plain(columns[name][position]) for name in names]
        digest.update(b"\n")
        digest.update(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return digest.hexdigest()
