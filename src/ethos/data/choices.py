"""Multiple-choice questions (``task: multiple_choice``): the bundled BBQ table or a user's file.

A question is a context (optional), a question, K >= 2 option texts and the index of the right
option. ``data.source: bbq`` is the bundled BBQ table (:func:`ethos.data.bbq.load_bbq_table`: all
six categories, three options, the "unknown" and stereotyped-target option indices the bias
scores need); any other source is a CSV, JSONL or Parquet file whose columns
``choices.context_field`` (unless None: question-only), ``choices.question_field``,
``choices.option_fields`` (default ``option_0``, ``option_1``, ... as found) and ``data.label``
(default ``label``) hold the question.

The split keeps question templates apart when it can: a table with ``category`` and
``question_index`` columns (BBQ's, or a file in its layout) is split by template
(:func:`ethos.data.bbq.split_by_template`), since BBQ's rows of one template differ only in the
names filled in and a template on both sides of the split leaks the question being tested.
Without those columns rows are split at random (seeded, stratified by the label's position);
``data.split.column`` gives a predefined split. ``data.sample`` keeps that many questions
(stratified by category and context condition where present, else by label) before splitting.

The BBQ columns a bias score reads (category, context_condition, question_polarity,
unknown_index, target_index) travel with the rows when present, so the run's predictions can be
scored by :func:`ethos.stats.bbq_bias.bbq_bias_scores` (the audit's ``qa_bias`` section).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ethos.config import RunConfig, looks_like_path
from ethos.data.fingerprint import fingerprint_rows
from ethos.data.split import PARTS, stratified_sample, stratified_split
from ethos.errors import ConfigError, DataError, listed

BUNDLED_SOURCES = ("bbq",)
"""Bundled multiple-choice sets, by ``data.source`` name."""
DEFAULT_LABEL = "label"
BIAS_COLUMNS = (
    "category",
    "context_condition",
    "question_polarity",
    "unknown_index",
    "target_index",
)
"""BBQ columns kept beside each question (and in the run's predictions) when the data has them."""
TEMPLATE_COLUMNS = ("category", "question_index")
"""A table with both is split by template (whole (category, question_index) groups)."""
_OPTION_PATTERN = re.compile(r"option_(\d+)")


@dataclass(frozen=True, eq=False)
class ChoiceDataset:
    """Multiple-choice questions, one row of ``table`` each, with their split part.

    ``table`` has the columns ``id``, ``question``, ``option_0`` .. ``option_{K-1}`` (whatever the
    source called them), ``label`` (0..K-1), ``split``, ``context`` unless question-only, and
    the :data:`BIAS_COLUMNS` and ``question_index`` found in the source.
    """

    name: str
    source: str
    table: pd.DataFrame
    n_options: int
    option_fields: tuple[str, ...]
    with_context: bool
    split_by: str
    fingerprint: str
    source_sha256: str | None = None

    def __len__(self) -> int:
        return len(self.table)

    @property
    def ids(self) -> np.ndarray:
        return self.table["id"].to_numpy(dtype=str)

    @property
    def split(self) -> np.ndarray:
        return self.table["split"].to_numpy(dtype=str)

    @property
    def labels(self) -> np.ndarray:
        return self.table["label"].to_numpy(dtype=np.int64)

    @property
    def questions(self) -> list[str]:
        return self.table["question"].tolist()

    @property
    def contexts(self) -> list[str] | None:
        return self.table["context"].tolist() if self.with_context else None

    @property
    def options(self) -> list[list[str]]:
        """Each question's K option texts, in option order."""
        columns = [f"option_{k}" for k in range(self.n_options)]
        return self.table[columns].to_numpy(dtype=object).tolist()

    @property
    def bias_columns(self) -> list[str]:
        """The :data:`BIAS_COLUMNS` this data has."""
        return [c for c in BIAS_COLUMNS if c in self.table.columns]

    @property
    def has_bias_columns(self) -> bool:
        return len(self.bias_columns) == len(BIAS_COLUMNS)

    def part(self, name: str) -> ChoiceDataset:
        """The questions of one split part (train, validation or test), same fingerprint."""
        if name not in PARTS:
            raise ValueError(f"unknown split part {name!r}; expected one of {PARTS}")
        rows = self.table.loc[self.table["split"] == name].reset_index(drop=True)
        return ChoiceDataset(
            name=f"{self.name}[{name}]",
            source=self.source,
            table=rows,
            n_options=self.n_options,
            option_fields=self.option_fields,
            with_context=self.with_context,
            split_by=self.split_by,
            fingerprint=self.fingerprint,
            source_sha256=self.source_sha256,
        )

    def summary(self) -> dict[str, Any]:
        """The facts the manifest records about the data."""
        split = self.table["split"]
        labels = self.table["label"].value_counts().sort_index()
        summary: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "source_sha256": self.source_sha256,
            "format": "multiple_choice",
            "questions": len(self),
            "rows": len(self),
            "options": self.n_options,
            "option_fields": list(self.option_fields),
            "context": self.with_context,
            "fingerprint": self.fingerprint,
            "split_by": self.split_by,
            "split_counts": {p: int((split == p).sum()) for p in PARTS},
            "label_counts": {f"option_{k}": int(v) for k, v in labels.items()},
            "bias_columns": self.bias_columns,
        }
        if "category" in self.table.columns:
            counts = self.table["category"].astype(str).value_counts().sort_index()
            summary["categories"] = {str(k): int(v) for k, v in counts.items()}
        return summary

    def __repr__(self) -> str:
        return (
            f"<ChoiceDataset {self.name!r}: {len(self)} questions, {self.n_options} options, "
            f"split by {self.split_by}, fingerprint {self.fingerprint[:12]}>"
        )


def is_bundled(source: str) -> bool:
    return not looks_like_path(source) and source.lower() in BUNDLED_SOURCES


def check_choice_source(config: RunConfig) -> None:
    """Refuse a source that cannot hold multiple-choice questions, before any run starts."""
    source = config.data.source
    if looks_like_path(source):
        if source.lower().endswith((".json", ".json.gz")):
            raise ConfigError(
                f"task multiple_choice reads a table, and data.source '{source}' is a JSON file",
                hint="use a .csv, .jsonl or .parquet file with one question per row",
            )
        if not Path(source).is_file():
            raise DataError(
                f"data file {source} does not exist"
                if not Path(source).exists()
                else f"data source {source} is not a regular file",
                hint="check data.source in the config (relative paths start at the config's "
                "folder)",
            )
        return
    if source.lower() not in BUNDLED_SOURCES:
        raise ConfigError(
            f"data.source '{source}' is not a multiple-choice set",
            hint=f"use source: {' or '.join(BUNDLED_SOURCES)}, or a .csv/.jsonl/.parquet file "
            "with a question, option and label column per row",
        )


def load_choices(config: RunConfig) -> ChoiceDataset:
    """The questions ``config`` names, checked, sampled and split (see the module docstring)."""
    check_choice_source(config)
    data = config.data
    columns = config.choice_columns
    source = data.source
    source_sha256 = None
    if is_bundled(source):
        from ethos.data.bbq import load_bbq_table

        raw = load_bbq_table()
        name = "bbq"
    else:
        from ethos.data.tables import read_table

        raw = read_table(source, fmt=data.format, encoding=data.encoding, separator=data.separator)
        name = Path(source).name.split(".")[0]
        source_sha256 = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    where = "the bundled BBQ table" if is_bundled(source) else f"data file {source}"
    raw = raw.reset_index(drop=True)
    option_fields = _option_fields(raw, columns.option_fields, where)
    label = data.label or DEFAULT_LABEL
    needed = [
        *([columns.context_field] if columns.context_field else []),
        columns.question_field,
        *option_fields,
        label,
        *([data.id_field] if data.id_field else []),
    ]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise DataError(
            f"{where} has no column(s) {', '.join(missing)}; found: "
            f"{listed([str(c) for c in raw.columns], 12)}",
            hint="name the columns in the config: choices.context_field (null for "
            "question-only), choices.question_field, choices.option_fields and data.label",
        )
    ids = _ids(raw, data.id_field, where)
    table = pd.DataFrame({"id": ids})
    if columns.context_field:
        table["context"] = _texts(raw[columns.context_field])
    table["question"] = _texts(raw[columns.question_field])
    _refuse_empty(table["question"], ids, columns.question_field, where)
    for k, field in enumerate(option_fields):
        table[f"option_{k}"] = _texts(raw[field])
    _check_options(table, ids, option_fields, where)
    table["label"] = _labels(raw[label], ids, label, len(option_fields), where)
    for column in (*BIAS_COLUMNS, "question_index"):
        if column in raw.columns and column not in table.columns:
            table[column] = raw[column].to_numpy()
    for column in ("unknown_index", "target_index"):
        if column in table.columns:
            table[column] = _option_index(table[column], ids, column, len(option_fields), where)
    if data.split.column:
        if data.split.column not in raw.columns:
            raise DataError(
                f"{where} has no split column '{data.split.column}' (data.split.column)",
                hint=f"columns: {listed([str(c) for c in raw.columns], 12)}",
            )
        table["_given_split"] = raw[data.split.column].astype(str).str.strip().str.lower()
    if data.sample is not None and data.sample < len(table):
        table = _sampled(table, data.sample, data.split.seed)
    table["split"], split_by = _split(table, config)
    table = table.drop(columns=["_given_split"], errors="ignore")
    _check_parts(table, split_by, where)
    fingerprint = fingerprint_rows({c: table[c].tolist() for c in table.columns}, id_column="id")
    return ChoiceDataset(
        name=name,
        source=source,
        table=table,
        n_options=len(option_fields),
        option_fields=tuple(option_fields),
        with_context=columns.context_field is not None,
        split_by=split_by,
        fingerprint=fingerprint,
        source_sha256=source_sha256,
    )


def _option_fields(raw: pd.DataFrame, given: list[str] | None, where: str) -> list[str]:
    if given is not None:
        return list(given)
    found = {
        int(m.group(1)): str(c) for c in raw.columns if (m := _OPTION_PATTERN.fullmatch(str(c)))
    }
    fields: list[str] = []
    while len(fields) in found:
        fields.append(found[len(fields)])
    if len(fields) < 2:
        shown = ", ".join(fields) if fields else "none"
        raise DataError(
            f"{where} has {len(fields)} option column(s) (option_0, option_1, ... found: "
            f"{shown}); a multiple-choice question needs at least two",
            hint="name the option columns option_0, option_1, ..., or list them in "
            f"choices.option_fields (columns: {listed([str(c) for c in raw.columns], 12)})",
        )
    return fields


def _ids(raw: pd.DataFrame, id_field: str | None, where: str) -> list[str]:
    column = id_field or ("id" if "id" in raw.columns else None)
    if column is None:
        return [str(i) for i in range(len(raw))]
    values = raw[column]
    if values.isna().any():
        first = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(f"{where}: the id column '{column}' is empty on row {first} (0-based)")
    ids = values.astype(str).tolist()
    repeated = sorted({str(i) for i, n in pd.Series(ids).value_counts().items() if n > 1})
    if repeated:
        raise DataError(
            f"{where}: ids repeat in column '{column}' ({listed(repeated)})",
            hint="each question needs its own id; drop the id column to number the rows instead",
        )
    return ids


def _texts(values: pd.Series) -> list[str]:
    """Cell values as stripped text; a missing cell is the empty string."""
    return ["" if _missing(v) else str(v).strip() for v in values.tolist()]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _refuse_empty(values: pd.Series, ids: list[str], field: str, where: str) -> None:
    empty = np.flatnonzero((values == "").to_numpy())
    if len(empty):
        raise DataError(
            f"{where}: the question ('{field}') is empty on {len(empty)} row(s), first the row "
            f"with id {ids[empty[0]]}",
            hint="remove those rows or fill in their question",
        )


def _check_options(table: pd.DataFrame, ids: list[str], fields: list[str], where: str) -> None:
    texts = table[[f"option_{k}" for k in range(len(fields))]].to_numpy(dtype=object)
    filled = texts != ""
    counts = filled.sum(axis=1)
    few = np.flatnonzero(counts < 2)
    if len(few):
        first = int(few[0])
        raise DataError(
            f"{where}: the question with id {ids[first]} has {int(counts[first])} option(s) "
            f"({len(few)} such row(s)); every question needs at least two",
            hint=f"fill in the options {', '.join(fields)} or remove those rows",
        )
    blank = np.argwhere(~filled)
    if len(blank):
        row, k = (int(x) for x in blank[0])
        raise DataError(
            f"{where}: option '{fields[k]}' is empty for the question with id {ids[row]} "
            f"({len(blank)} empty option(s) in all)",
            hint=f"every question needs all {len(fields)} options; fill them in or remove the "
            "rows (questions with fewer options need their own file)",
        )


def _labels(values: pd.Series, ids: list[str], column: str, k: int, where: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    not_integer = np.isnan(numeric) | (np.floor(numeric) != numeric)
    if not_integer.any():
        first = int(np.flatnonzero(not_integer)[0])
        raise DataError(
            f"{where}: label '{column}' must be an integer option index; the question with id "
            f"{ids[first]} has '{values.iloc[first]}' ({int(not_integer.sum())} such row(s))",
            hint=f"the label is the position of the right option, 0..{k - 1}",
        )
    outside = (numeric < 0) | (numeric >= k)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{where}: label {int(numeric[first])} of the question with id {ids[first]} is out of "
            f"range: there are {k} options, so labels are 0..{k - 1} "
            f"({int(outside.sum())} such row(s))",
            hint="the label is the 0-based position of the right option",
        )
    return numeric.astype(np.int64)


def _option_index(values: pd.Series, ids: list[str], column: str, k: int, where: str) -> pd.Series:
    """A BBQ option-index column as nullable integers 0..K-1 (missing stays missing)."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = (numeric.isna() & values.notna()) | ~(numeric.isna() | numeric.isin(range(k)))
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{where}: {column} must be an option index 0..{k - 1} or empty; the question with "
            f"id {ids[first]} has '{values.iloc[first]}' ({int(bad.sum())} such row(s))",
            hint="unknown_index is the 'unknown' option's position, target_index the "
            "stereotyped group's (ethos.data.bbq)",
        )
    return numeric.astype("Int64")


def _strata(table: pd.DataFrame) -> list[str]:
    if "category" in table.columns and "context_condition" in table.columns:
        return (
            table["category"].astype(str) + "|" + table["context_condition"].astype(str)
        ).tolist()
    return table["label"].astype(str).tolist()


def _sampled(table: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    keep = stratified_sample(table["id"].tolist(), _strata(table), size=size, seed=seed)
    return table.iloc[keep].reset_index(drop=True)


def _split(table: pd.DataFrame, config: RunConfig) -> tuple[np.ndarray, str]:
    split = config.data.split
    if "_given_split" in table.columns:
        given = table["_given_split"]
        bad = sorted(set(given) - set(PARTS))
        if bad:
            raise DataError(
                f"split column '{split.column}' holds {listed(bad)}",
                hint="its values must be train, validation or test",
            )
        return given.to_numpy(dtype=object), "column"
    if all(c in table.columns for c in TEMPLATE_COLUMNS):
        from ethos.data.bbq import split_by_template

        by_template = split_by_template(
            table, test_fraction=split.test, validation_fraction=split.validation, seed=split.seed
        )
        return by_template.to_numpy(dtype=object), "template"
    parts = stratified_split(
        table["id"].tolist(),
        table["label"].tolist(),
        validation=split.validation,
        test=split.test,
        seed=split.seed,
    )
    return parts, "random"


def _check_parts(table: pd.DataFrame, split_by: str, where: str) -> None:
    counts = {p: int((table["split"] == p).sum()) for p in PARTS}
    empty = [p for p, n in counts.items() if n == 0]
    if empty:
        why = (
            "whole question templates go to one part, and there are too few templates"
            if split_by == "template"
            else "there are too few questions"
        )
        raise DataError(
            f"{where}: the {' and '.join(empty)} part(s) would be empty ({len(table)} questions, "
            f"split by {split_by}: {counts}); {why}",
            hint="use more questions (raise or remove data.sample) or change data.split",
        )
