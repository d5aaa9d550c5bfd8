"""Serialising table rows to text, so a language model can read a record.

"age: 34; prior offences: 2; charge degree: felony" keeps field names next to values, which lets a
pretrained text model use what it knows about the words. Field order and display names come from
the config; values can be renamed (codes to words). Sensitive attributes are left out unless the
config explicitly includes them, and that choice travels into the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

MISSING = "unknown"


def format_value(value: Any) -> str:
    """Readable text for one cell: whole floats without '.0', missing values as 'unknown'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def field_label(column: str, field_names: Mapping[str, str]) -> str:
    """The display name of a column: configured, else the column name with spaces."""
    return field_names.get(column, column.replace("_", " ").replace("-", " "))


def records_to_text(
    table: pd.DataFrame,
    fields: Sequence[str],
    *,
    field_names: Mapping[str, str] | None = None,
    value_names: Mapping[str, Mapping[str, str]] | None = None,
    separator: str = "; ",
) -> list[str]:
    """One text per row: ``"<name>: <value>"`` for each field, in the given order."""
    field_names = field_names or {}
    value_names = value_names or {}
    labels = [field_label(column, field_names) for column in fields]
    columns = []
    for column in fields:
        mapping = value_names.get(column, {})
        columns.append(
            [mapping.get(text, text) for text in (format_value(v) for v in table[column])]
        )
    return [
        separator.join(f"{label}: {value}" for label, value in zip(labels, row, strict=True))
        for row in zip(*columns, strict=True)
    ]
