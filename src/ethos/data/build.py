"""From a DataConfig to a validated, split, fingerprinted Dataset.

This is the one place data rules live: which columns become model text, which stay as audit groups,
which must never reach the model, and what counts as bad data. Hard problems (missing columns,
missing labels, duplicate ids, a single class) stop the run with a message naming the file, the row
or column, and the fix; soft ones (small groups, long texts) become warnings carried in the Dataset.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ethos.config import DataConfig, looks_like_path
from ethos.data.dataset import Dataset
from ethos.data.fingerprint import fingerprint_rows
from ethos.data.records import format_value, records_to_text
from ethos.data.split import PARTS, stratified_sample, stratified_split
from ethos.data.tables import read_table
from ethos.datasets import BUNDLED, bundled_names
from ethos.errors import DataError
from ethos.hashing import file_sha256

TokenCounter = Callable[[Sequence[str], Sequence[str] | None], np.ndarray]
MAX_LISTED = 5


@dataclass(frozen=True)
class _Source:
    table: pd.DataFrame
    where: str
    name: str
    sha256: str | None
    notes: tuple[str, ...]


def resolve_data_config(config: DataConfig) -> DataConfig:
    """Fill a bundled set's defaults into every field the user did not set."""
    bundled = BUNDLED.get(config.source)
    if bundled is None:
        return config
    merged = {**bundled.defaults, **config.model_dump(exclude_unset=True)}
    return DataConfig.model_validate(merged)


def _load_source(source: str, config: DataConfig) -> _Source:
    bundled = BUNDLED.get(source)
    if bundled is not None:
        return _Source(bundled.load(), f"bundled set '{source}'", source, None, bundled.notes)
    if not looks_like_path(source):
        close = difflib.get_close_matches(source, bundled_names(), n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        raise DataError(
            f"data.source '{source}' is neither a bundled set nor a file path",
            hint=f"{guess}bundled sets: {', '.join(bundled_names())}; "
            "or give a path such as data/train.csv",
        )
    table = read_table(
        source, fmt=config.format, encoding=config.encoding, separator=config.separator
    )
    name = source.replace("\\", "/").rsplit("/", 1)[-1]
    return _Source(table, source, name, file_sha256(source), ())


def _require_columns(table: pd.DataFrame, wanted: dict[str, list[str]], where: str) -> None:
    """Every column the config names must exist; all missing ones are listed in one error, so a
    config written against another file is fixed in one pass, not one run per column."""
    available = [str(c) for c in table.columns]
    missing: dict[str, list[str]] = {}  # column -> the keys that name it
    for key, columns in wanted.items():
        for column in columns:
            if column not in table.columns:
                missing.setdefault(column, []).append(f"data.{key}")
    if not missing:
        return
    shown = ", ".join(available[:30]) + (" ..." if len(available) > 30 else "")
    if len(missing) == 1:
        column, keys = next(iter(missing.items()))
        close = difflib.get_close_matches(column, available, n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        raise DataError(
            f"{where} has no column '{column}' (named by {', '.join(keys)})",
            hint=f"{guess}available columns: {shown}",
        )
    listed = "\n".join(
        f"  - '{column}' (named by {', '.join(keys)}){_did_you_mean(column, available)}"
        for column, keys in missing.items()
    )
    raise DataError(
        f"{where} has none of these {len(missing)} columns the config names:\n{listed}",
        hint=f"available columns: {shown}",
    )


def _did_you_mean(column: str, available: list[str]) -> str:
    close = difflib.get_close_matches(column, available, n=1)
    return f": did you mean '{close[0]}'?" if close else ""


def _rows(positions: np.ndarray) -> str:
    listed = ", ".join(str(p + 1) for p in positions[:MAX_LISTED])
    more = f" and {len(positions) - MAX_LISTED} more" if len(positions) > MAX_LISTED else ""
    return f"row{'s' * (len(positions) > 1)} {listed}{more}"


def _text_fields(config: DataConfig, notes: list[str]) -> list[str]:
    """The columns that make the model's text, with sensitive attributes removed by default."""
    if config.text_field:
        fields = [config.text_field] + ([config.text_pair_field] if config.text_pair_field else [])
    elif config.record_fields:
        fields = list(config.record_fields)
    else:
        raise DataError(
            f"data.source '{config.source}' needs data.text_field or data.record_fields",
            hint="name the text column (text_field) or the table columns to serialise "
            "(record_fields)",
        )
    forbidden = sorted(set(fields) & set(config.forbidden_fields))
    if forbidden:
        raise DataError(
            f"data fields {', '.join(forbidden)} must never be model input for "
            f"'{config.source}' (vendor scores or outcome columns would leak the answer)",
            hint="remove them from record_fields/text_field; they stay available for auditing",
        )
    if config.label in fields:
        raise DataError(
            f"the label column '{config.label}' is also listed as model input",
            hint="remove it from record_fields/text_field",
        )
    sensitive_in_text = [f for f in fields if f in config.sensitive]
    if sensitive_in_text and not config.include_sensitive_in_text:
        if config.text_field:
            raise DataError(
                f"text column '{config.text_field}' is declared sensitive",
                hint="set data.include_sensitive_in_text: true if that is intended",
            )
        fields = [f for f in fields if f not in config.sensitive]
        notes.append(
            f"sensitive attributes {', '.join(sensitive_in_text)} were removed from the model "
            "text (set data.include_sensitive_in_text: true to include them)"
        )
    if config.include_sensitive_in_text and config.sensitive:
        if config.record_fields:
            fields += [s for s in config.sensitive if s not in fields]
        notes.append(
            "data.include_sensitive_in_text is true: sensitive attributes "
            f"{', '.join(config.sensitive)} may appear in the model input by explicit choice"
        )
    return fields


def _labels(
    table: pd.DataFrame, config: DataConfig, where: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    assert config.label is not None
    raw = table[config.label]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if len(missing):
        raise DataError(
            f"{where}: label column '{config.label}' is empty in {_rows(missing)} "
            f"({len(missing)} of {len(table)})",
            hint="fill in or drop those rows; a run never guesses labels",
        )
    values = [format_value(v) for v in raw]
    names = tuple(config.label_names) if config.label_names else tuple(sorted(set(values)))
    index = _label_index(set(values), names)
    unknown = sorted({v for v in values if v not in index})
    if unknown:
        raise DataError(
            f"{where}: label values {', '.join(map(repr, unknown[:MAX_LISTED]))} in column "
            f"'{config.label}' are not among data.label_names {list(names)}",
            hint="add them to data.label_names or fix those rows (integer labels 0.."
            f"{len(names) - 1} are named by position: value 0 gets the first name)",
        )
    labels = np.array([index[v] for v in values], dtype=np.int64)
    present = sorted(set(values))
    if len(present) < 2:
        raise DataError(
            f"{where}: label column '{config.label}' has a single class ({present[0]!r}) "
            f"in all {len(table)} rows",
            hint="a classifier needs at least two classes; check the label column and any filter",
        )
    return labels, names


def _label_index(values: set[str], names: tuple[str, ...]) -> dict[str, int]:
    """Label value -> class index. Values that are names map to their position; integer labels
    0..n-1 that are not names are named by position (``label_names: [repaid, defaulted]`` for a
    0/1 column), so a coded outcome gets readable class names without editing the data."""
    if values <= set(names):
        return {name: i for i, name in enumerate(names)}
    positions = {str(i): i for i in range(len(names))}
    if values <= set(positions):
        return positions
    return {name: i for i, name in enumerate(names)}


def _ids(table: pd.DataFrame, config: DataConfig, where: str) -> np.ndarray:
    if config.id_field is None:
        return np.array([str(i) for i in range(len(table))], dtype=object)
    raw = table[config.id_field]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if len(missing):
        raise DataError(
            f"{where}: id column '{config.id_field}' is empty in {_rows(missing)}",
            hint="give every row an id, or remove data.id_field to number rows automatically",
        )
    ids = np.array([format_value(v) for v in raw], dtype=object)
    duplicated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if duplicated.any():
        dupes = sorted(set(ids[duplicated]))
        raise DataError(
            f"{where}: id column '{config.id_field}' has duplicate ids "
            f"{', '.join(map(repr, dupes[:MAX_LISTED]))} ({int(duplicated.sum())} rows)",
            hint="ids must be unique; deduplicate the rows or choose another id_field",
        )
    return ids


def _texts(table: pd.DataFrame, column: str, where: str) -> list[str]:
    raw = table[column]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if len(missing):
        raise DataError(
            f"{where}: text column '{column}' is empty in {_rows(missing)}",
            hint="fill in or drop those rows",
        )
    return [str(v) for v in raw]


def _assign_split(
    table: pd.DataFrame,
    ids: np.ndarray,
    labels: np.ndarray,
    groups: pd.DataFrame,
    config: DataConfig,
    where: str,
) -> np.ndarray:
    split_cfg = config.split
    if split_cfg.column is not None:
        parts = np.array([format_value(v) for v in table[split_cfg.column]], dtype=object)
        bad = sorted(set(parts) - set(PARTS))
        if bad:
            raise DataError(
                f"{where}: split column '{split_cfg.column}' has values {bad[:MAX_LISTED]}",
                hint="use only train, validation and test",
            )
        return parts
    strata = labels.astype(str)
    if split_cfg.group_aware and len(groups.columns):
        strata = np.array(
            [
                "|".join(row)
                for row in zip(strata, *(groups[c] for c in groups.columns), strict=True)
            ]
        )
    return stratified_split(
        ids, strata, validation=split_cfg.validation, test=split_cfg.test, seed=split_cfg.seed
    )


def _group_warnings(groups: pd.DataFrame, split: np.ndarray, config: DataConfig) -> list[str]:
    found = []
    for column in groups.columns:
        counts = groups[column].value_counts()
        small = counts[counts < config.min_group_size]
        if len(small):
            listed = ", ".join(f"{k} ({v} rows)" for k, v in small.items())
            found.append(
                f"group column '{column}' has groups below data.min_group_size="
                f"{config.min_group_size}: {listed}; their fairness metrics will be unreliable"
            )
        for value in counts.index:
            absent = [
                p for p in PARTS if not ((groups[column] == value).to_numpy() & (split == p)).any()
            ]
            if absent:
                found.append(f"group {column}={value} has no rows in the {'/'.join(absent)} part")
    return found


def load_dataset(
    config: DataConfig,
    *,
    max_length: int | None = None,
    count_tokens: TokenCounter | None = None,
) -> Dataset:
    """Load, validate, serialise, split and fingerprint the data a config describes."""
    config = resolve_data_config(config)
    source = _load_source(config.source, config)
    notes = list(source.notes)
    table = source.table
    train_only = np.zeros(len(table), dtype=bool)
    if config.extra_train_source:
        extra_source = _load_source(config.extra_train_source, config)
        table = pd.concat([table, extra_source.table], ignore_index=True)
        train_only = np.r_[train_only, np.ones(len(extra_source.table), dtype=bool)]
        notes.append(
            f"{len(extra_source.table)} rows from {extra_source.where} are used for training only"
        )
    where = source.where
    if len(table) == 0:
        raise DataError(f"{where} has no rows", hint="check the file and any filter")
    if config.label is None:
        raise DataError(
            f"no label column given for {where}", hint="set data.label to the column to predict"
        )
    fields = _text_fields(config, notes)
    group_columns = config.audit_groups
    wanted = {
        "label": [config.label],
        "id_field": [config.id_field] if config.id_field else [],
        "text fields": fields,
        "sensitive": list(config.sensitive),
        "groups": group_columns,
        "keep_columns": list(config.keep_columns),
        "split.column": [config.split.column] if config.split.column else [],
    }
    _require_columns(table, wanted, where)

    labels, label_names = _labels(table, config, where)
    ids = _ids(table, config, where)
    if config.sample is not None and config.sample < len(table):
        keep = stratified_sample(
            ids, labels.astype(str), size=config.sample, seed=config.split.seed
        )
        table = table.iloc[keep].reset_index(drop=True)
        labels, ids, train_only = labels[keep], ids[keep], train_only[keep]
        notes.append(f"a stratified sample of {len(keep)} rows was drawn (data.sample)")
    if config.text_field:
        texts = _texts(table, config.text_field, where)
        pairs = _texts(table, config.text_pair_field, where) if config.text_pair_field else None
    else:
        texts = records_to_text(
            table, fields, field_names=config.field_names, value_names=config.value_names
        )
        pairs = None
    groups = pd.DataFrame(  # the index keeps the row count when there are no group columns
        {c: [format_value(v) for v in table[c]] for c in group_columns},
        index=pd.RangeIndex(len(table)),
        dtype=object,
    )
    for column in group_columns:
        if groups[column].nunique() < 2:
            notes.append(
                f"group column '{column}' has a single value; no disparity can be measured on it"
            )
    extra = pd.DataFrame({c: table[c].to_numpy() for c in config.keep_columns})
    record_columns = [] if config.text_field else list(dict.fromkeys([*fields, *config.sensitive]))
    records = table[record_columns].reset_index(drop=True) if record_columns else pd.DataFrame()
    split = _assign_split(table, ids, labels, groups, config, where)
    split[train_only] = "train"

    found = _group_warnings(groups, split, config)
    if count_tokens is not None and max_length is not None:
        lengths = count_tokens(texts, pairs)
        over = int((lengths > max_length).sum())
        if over:
            found.append(
                f"{over} of {len(texts)} texts ({over / len(texts):.1%}) are longer than "
                f"model.max_length={max_length} tokens (longest {int(lengths.max())}) and will "
                "be truncated"
            )
    for message in found:
        warnings.warn(message, stacklevel=2)

    columns: dict[str, Sequence[object]] = {
        "id": list(ids),
        "text": texts,
        "label": list(labels),
        "split": list(split),
    }
    if pairs is not None:
        columns["text_pair"] = pairs
    columns.update({f"group:{c}": list(groups[c]) for c in groups.columns})
    columns.update({f"extra:{c}": list(extra[c]) for c in extra.columns})
    return Dataset(
        name=source.name,
        source=where,
        ids=ids,
        texts=texts,
        labels=labels,
        label_names=label_names,
        groups=groups,
        split=split,
        fingerprint=fingerprint_rows(columns, id_column="id"),
        text_pairs=pairs,
        extra=extra,
        records=records,
        text_fields=tuple(fields),
        text_includes_sensitive=config.include_sensitive_in_text
        and any(f in config.sensitive for f in fields),
        source_sha256=source.sha256,
        notes=tuple(notes),
        warnings=tuple(found),
    )
