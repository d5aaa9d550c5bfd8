"""Labelled feedback a retrained child learns from: a file, or `ethos serve`'s feedback store.

Either way the result is one table of the rows the parent never saw, in the parent's terms: the
text the model reads, a label among the parent's label names, and each of the parent's group
columns. A file holds records in the parent's own schema (the columns its config reads, the label
column, the group columns), so its texts are built exactly as the parent's were; the serving store
holds the PII-masked texts the server decided on (kept only under ``ethos serve --keep-inputs``)
and the group of the run's served attribute.

Refused before anything is written: feedback for another model id, labels outside the parent's
label set, a store without kept inputs, and an empty or unreadable source.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ethos.config import SplitConfig
from ethos.data import load_dataset
from ethos.data.fingerprint import fingerprint_rows
from ethos.data.records import format_value
from ethos.data.tables import read_table
from ethos.database import mask
from ethos.errors import DataError
from ethos.models.group_thresholds import THRESHOLDS_FILE, GroupThresholds
from ethos.rundir import RunDir

STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
"""A ``--feedback`` path with one of these suffixes is a serving store (SQLite), not a table."""
MODEL_ID_COLUMN = "model_id"
"""An optional column of a feedback file: the run each row's prediction came from."""
ID_PREFIX = "feedback:"
"""Feedback row ids are prefixed so they can never collide with the parent's row ids."""
UNKNOWN_GROUP = "unknown"
"""The group of an attribute the serving store did not record (it keeps the served one only)."""
MAX_LISTED = 5


@dataclass(frozen=True)
class Feedback:
    """Feedback rows in the parent's terms, oldest first where the source says when.

    ``frame`` has ``id``, ``text`` (and ``text_pair`` for pair runs), ``label`` (a label name),
    one column per parent group attribute, and ``received_utc`` (ISO time or None).
    """

    frame: pd.DataFrame
    source: str
    """Where the rows came from, printable (a store URL's password is masked)."""
    kind: str
    """``file`` or ``store``."""
    fingerprint: str
    notes: tuple[str, ...] = ()
    records: pd.DataFrame | None = None
    """For a file fed to a records-to-text parent: each row's record fields, sensitive and kept
    columns as text (:func:`ethos.data.records.format_value`), aligned with ``frame``; the child
    then reads records as the parent did. None for texts (the serving store keeps only those)."""

    def summary(self) -> dict[str, Any]:
        """What the child's manifest records about its feedback."""
        return {
            "source": self.source,
            "kind": self.kind,
            "rows": len(self.frame),
            "fingerprint": self.fingerprint,
            "label_counts": {str(k): int(v) for k, v in self.frame["label"].value_counts().items()},
            "notes": list(self.notes),
        }


def is_store(source: str) -> bool:
    """Whether ``--feedback`` names a serving store (a database URL or a SQLite file)."""
    return "://" in source or source.lower().endswith(STORE_SUFFIXES)


def load_feedback(parent: RunDir, source: str) -> Feedback:
    """The feedback in ``source`` (a table file or a serving store) for ``parent``'s model."""
    if not isinstance(source, str) or not source.strip():
        raise DataError(
            "no feedback source given",
            hint="pass --feedback FILE (csv, jsonl, parquet) or the serving store's URL",
        )
    if is_store(source):
        return _from_store(parent, source)
    return _from_file(parent, Path(source))


def _label_names(parent: RunDir) -> list[str]:
    return [str(n) for n in (parent.manifest.get("data") or {}).get("label_names") or []]


def _from_file(parent: RunDir, path: Path) -> Feedback:
    """Records in the parent's schema, turned into texts by the parent's own data config."""
    config = parent.config.data
    table = read_table(path)  # names the file and what is wrong with it
    if len(table) == 0:
        raise DataError(f"feedback file {path} has no rows", hint="add labelled rows")
    _check_model_ids(table, parent, str(path))
    id_field = config.id_field if config.id_field and config.id_field in table.columns else None
    file_config = config.model_copy(
        update={
            "source": str(path),
            "format": None,
            "separator": None,
            "sample": None,
            "extra_train_source": None,
            "id_field": id_field,
            # Kept columns are for auditing only: feedback need not carry the vendor's scores.
            "keep_columns": [c for c in config.keep_columns if c in table.columns],
            "label_names": _label_names(parent),
            "min_group_size": 1,
            "split": SplitConfig(group_aware=False, seed=config.split.seed),
        }
    )
    with warnings.catch_warnings():  # small groups are the child's audit's business
        warnings.simplefilter("ignore")
        try:
            rows = load_dataset(file_config)
        except DataError as exc:
            raise DataError(f"feedback: {exc.message}", hint=exc.hint) from None
    frame = pd.DataFrame(
        {"id": [f"{ID_PREFIX}{format_value(i)}" for i in rows.ids], "text": rows.texts}
    )
    if rows.text_pairs is not None:
        frame["text_pair"] = rows.text_pairs
    frame["label"] = [rows.label_names[i] for i in rows.labels]
    for column in rows.groups.columns:
        frame[column] = rows.groups[column].to_numpy()
    frame["received_utc"] = None
    records = None
    if not config.text_field:
        records = pd.concat([rows.records, rows.extra], axis=1).map(format_value)
        records = records.loc[:, ~records.columns.duplicated()]
    return _finished(frame, str(path), "file", (), records)


def _check_model_ids(table: pd.DataFrame, parent: RunDir, where: str) -> None:
    if MODEL_ID_COLUMN not in table.columns:
        return
    run_id = str(parent.manifest.get("run_id"))
    values = table[MODEL_ID_COLUMN].map(format_value)
    other = values[values != run_id]
    if len(other):
        found = ", ".join(repr(v) for v in sorted(set(other))[:MAX_LISTED])
        raise DataError(
            f"{where}: {len(other)} of {len(table)} feedback rows are for model {found}, not "
            f"for the parent run '{run_id}'",
            hint="retrain each run on its own feedback (filter the file by model_id)",
        )


def _from_store(parent: RunDir, url: str) -> Feedback:
    """The served model's predictions with their latest feedback and their kept masked texts."""
    from ethos.serving.store import ServingStore

    if "://" not in url and not Path(url).is_file():
        raise DataError(
            f"feedback store {url} does not exist",
            hint="pass the --db of the `ethos serve` that logged the feedback",
        )
    shown = mask(url)
    run_id = str(parent.manifest.get("run_id"))
    store = ServingStore(url)
    try:
        per_model = store.feedback_model_ids()
        examples = store.feedback_examples(model_id=run_id)
    finally:
        store.close()
    if not examples:
        others = ", ".join(f"'{m}' ({n})" for m, n in sorted(per_model.items())[:MAX_LISTED])
        raise DataError(
            f"the feedback store {shown} holds no feedback for the parent run '{run_id}'"
            + (f"; it holds feedback for {others}" if others else ""),
            hint="retrain the run that served those predictions, or collect feedback first "
            "(POST /v1/feedback)",
        )
    kept = [e for e in examples if e.masked_text is not None]
    if not kept:
        raise DataError(
            f"none of the {len(examples)} feedback rows for '{run_id}' in {shown} has its input "
            "kept: the server logged only hashes",
            hint="serve with `ethos serve --keep-inputs` to keep PII-masked inputs for retraining",
        )
    notes = []
    if len(kept) < len(examples):
        notes.append(
            f"{len(examples) - len(kept)} feedback rows without a kept input were left out"
        )
    names = _label_names(parent)
    unknown = sorted({e.true_label for e in kept} - set(names))
    if unknown:
        raise DataError(
            f"feedback in {shown} has labels {', '.join(map(repr, unknown[:MAX_LISTED]))} "
            f"outside the parent's label set {names}",
            hint="correct those feedback rows (POST /v1/feedback again supersedes a label)",
        )
    frame = pd.DataFrame(
        {
            "id": [f"{ID_PREFIX}{e.prediction_id}" for e in kept],
            "text": [e.masked_text for e in kept],
        }
    )
    if any(e.masked_pair is not None for e in kept):
        frame["text_pair"] = [e.masked_pair or "" for e in kept]
    frame["label"] = [e.true_label for e in kept]
    served = served_attribute(parent)
    attributes = parent.config.data.audit_groups
    for attribute in attributes:
        if attribute == served:
            frame[attribute] = [e.group if e.group else UNKNOWN_GROUP for e in kept]
        else:
            frame[attribute] = UNKNOWN_GROUP
    if any(a != served for a in attributes):
        notes.append(
            "the serving store records the group of the served attribute only; other group "
            f"columns read '{UNKNOWN_GROUP}' for feedback rows"
        )
    frame["received_utc"] = [e.feedback_created_at.isoformat() for e in kept]
    return _finished(frame, shown, "store", tuple(notes))


def served_attribute(parent: RunDir) -> str | None:
    """The attribute whose group `ethos serve` logs with each of ``parent``'s predictions
    (serving's own rule, :func:`ethos.serving.observe.served_attribute`)."""
    from ethos.serving.observe import served_attribute as serving_rule

    rule = parent.model_dir / THRESHOLDS_FILE
    thresholds = GroupThresholds.load(rule).attribute if rule.is_file() else None
    return serving_rule(thresholds, parent.config.data.sensitive)


def _finished(
    frame: pd.DataFrame,
    source: str,
    kind: str,
    notes: tuple[str, ...],
    records: pd.DataFrame | None = None,
) -> Feedback:
    duplicated = frame["id"][frame["id"].duplicated()]
    if len(duplicated):
        raise DataError(
            f"feedback in {source} repeats the row id {duplicated.iloc[0]!r}",
            hint="give every feedback row its own id",
        )
    columns: dict[str, Sequence[Any]] = {
        c: list(frame[c]) for c in frame.columns if c != "received_utc"
    }
    return Feedback(
        frame=frame.reset_index(drop=True),
        source=source,
        kind=kind,
        fingerprint=fingerprint_rows(columns, id_column="id"),
        notes=notes,
        records=None if records is None else records.reset_index(drop=True),
    )
