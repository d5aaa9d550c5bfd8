"""`ethos predict`: score a CSV/JSONL file with a finished run, streaming in chunks.

Inputs are turned into text and scored by the run model (:class:`~ethos.models.inference.
RunModel`) exactly as at training time (the run's resolved data config), so a
record file with the training columns works as it is. The output is the input rows plus the
predicted label and one probability column per class, written to a temporary file and renamed,
so an interrupted run leaves no half-written output. A run fitted with per-group thresholds
(``train.fairness.method: thresholds``) decides with them instead of argmax, which needs each row's
group (and id) in the input; its output says so in a ``decision_rule`` column.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ethos.data.records import MISSING, format_value
from ethos.data.tables import csv_separator
from ethos.errors import DataError
from ethos.models.group_thresholds import DECISION_RULE
from ethos.models.inference import RunModel
from ethos.rundir import RunDir

CHUNK_ROWS = 2000


def _chunks(path: Path) -> Iterator[pd.DataFrame]:
    suffix = "".join(s.lower() for s in path.suffixes if s.lower() != ".gz")
    if suffix.endswith((".csv", ".tsv")):
        try:
            yield from pd.read_csv(path, sep=_separator(path), chunksize=CHUNK_ROWS)
        except pd.errors.EmptyDataError:
            return
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not a readable UTF-8 CSV: {exc}") from None
    elif suffix.endswith((".jsonl", ".ndjson")):
        try:
            yield from pd.read_json(path, lines=True, chunksize=CHUNK_ROWS)
        except ValueError as exc:
            raise DataError(
                f"{path} is not valid JSONL: {exc}", hint="one JSON object per line"
            ) from None
    else:
        raise DataError(
            f"cannot read {path}", hint="ethos predict reads .csv, .tsv and .jsonl files"
        )


def _separator(path: Path) -> str:
    """The CSV's separator, detected from its first 64 KiB as the data layer does for training
    files (a semicolon file read with commas is one wide column)."""
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        head = handle.read(1 << 16).decode("utf-8", errors="replace")
    return csv_separator(head, path)


def predict_file(run: RunDir, input_path: Path, output_path: Path | None = None) -> Path:
    """Write predictions for every row of ``input_path``; returns the output path."""
    if not input_path.is_file():
        raise DataError(f"input file {input_path} does not exist", hint="check the path")
    if run.config.task != "classification":
        raise DataError(
            f"{run.path} is a {run.config.task} run; ethos predict scores classification runs",
        )
    scorer = RunModel.from_dir(run)
    assert scorer.data is not None
    names = scorer.label_names
    output_path = output_path or input_path.with_name(
        input_path.name.split(".")[0] + ".predictions.csv"
    )
    staging = output_path.with_name(f".{output_path.name}.partial")
    rows = 0
    try:
        with staging.open("w", encoding="utf-8") as out:
            for number, chunk in enumerate(_chunks(input_path)):
                missing = [c for c in scorer.record_fields if c not in chunk.columns]
                if missing:
                    raise DataError(
                        f"{input_path} lacks the column(s) {', '.join(missing)} the model was "
                        "trained on",
                        hint=f"provide: {', '.join(scorer.record_fields)}",
                    )
                texts, pairs = scorer.texts_from_frame(chunk)
                probabilities = scorer.predict_proba(texts, pairs)
                result = chunk.copy()
                result["predicted_label"] = [names[i] for i in probabilities.argmax(axis=1)]
                if scorer.thresholds is not None:
                    decided = _decide(
                        scorer, chunk, probabilities, scorer.data.id_field, input_path, rows
                    )
                    result["predicted_label"] = [names[i] for i in decided]
                    result["decision_rule"] = DECISION_RULE
                for i, name in enumerate(names):
                    result[f"prob_{name}"] = probabilities[:, i]
                result.to_csv(out, index=False, header=number == 0)
                rows += len(result)
        if rows == 0:
            raise DataError(f"input file {input_path} has no rows", hint="nothing to predict")
        os.replace(staging, output_path)
    finally:
        staging.unlink(missing_ok=True)
    return output_path


def _decide(
    scorer: RunModel,
    chunk: pd.DataFrame,
    probabilities: np.ndarray,
    id_field: str | None,
    input_path: Path,
    offset: int,
) -> np.ndarray:
    """0/1 group-threshold decisions for one chunk, keyed on the row id (else the row number).

    The group says which thresholds apply; the id keys the rule's random draw, so the same row
    gets the same decision here as in the run's own predictions and audit.
    """
    thresholds = scorer.thresholds
    assert thresholds is not None
    attribute = str(thresholds.attribute)
    why = (
        "this run decides with per-group thresholds (train.fairness.method: thresholds), "
        "which apply a different threshold to each group"
    )
    if attribute not in chunk.columns:
        raise DataError(
            f"{input_path} lacks the column '{attribute}': {why}, so each row's group is needed",
            hint=f"add '{attribute}' with one of {', '.join(map(repr, sorted(thresholds.groups)))}",
        )
    empty = np.flatnonzero(chunk[attribute].isna().to_numpy())
    if len(empty) and MISSING not in thresholds.groups:
        raise DataError(
            f"{input_path}: column '{attribute}' is empty in data row {offset + empty[0] + 1} "
            f"({len(empty)} rows in all): {why}",
            hint="fill in the group of every row",
        )
    groups = [format_value(v) for v in chunk[attribute]]
    if id_field is None:  # rows are numbered as ethos numbers them when data.id_field is unset
        keys: list[str | None] = [str(offset + i) for i in range(len(chunk))]
    elif id_field not in chunk.columns:
        raise DataError(
            f"{input_path} lacks the id column '{id_field}': {why} at random, keyed on the row "
            "id so that a row always gets the same decision",
            hint=f"add the '{id_field}' column",
        )
    else:
        keys = [None if pd.isna(v) else format_value(v) for v in chunk[id_field]]
    return scorer.decide(probabilities, list(groups), keys).indices
