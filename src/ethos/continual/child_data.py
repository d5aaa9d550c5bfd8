"""The rows a retrained child is trained, validated and tested on, and the config that reads them.

* **train**: the feedback rows not held out, plus a replay sample of the parent's training part.
  ``replay`` is the replayed rows' share of the child's training rows (0.5: as many parent rows
  as feedback rows), drawn stratified by label so the replay keeps the parent's balance.
* **validation**: the parent's validation part (model selection and any threshold fitting stay
  on rows the parent was judged by).
* **test**: the parent's test part, unchanged (same ids, texts, labels, groups), plus a held-out
  share of the feedback. Forgetting and gains are therefore measured on the same rows: ``ethos
  diff`` pairs the parent's test rows by id, and the ``origin`` column tells the two apart.

The child's config reads this table (``child_data.parquet`` in its run directory) through the
ordinary data layer with a predefined split, so the audit and every later command reload it like
any other run's data. A parent that serialises records to text, fed from a file, gets a child
that does the same: the table holds the record fields (as text, which renders identically) and
the child's config is the parent's data section, so the child takes the parent's inputs (`ethos
predict` files, served records) and the audit can still flip sensitive fields. Otherwise (a text
parent, or feedback from the serving store, which keeps texts only) the table holds the texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ethos.config import DataConfig, SplitConfig
from ethos.continual.feedback import Feedback
from ethos.data import Dataset
from ethos.data.records import format_value, records_to_text
from ethos.data.split import stratified_sample
from ethos.errors import DataError

ORIGIN = "origin"
"""The column saying where a child row came from: ``parent`` or ``feedback``."""
PART = "split"
"""The child's predefined split column."""
MIN_TRAIN_FEEDBACK = 1


@dataclass(frozen=True)
class ChildRows:
    """The child's table, the counts its manifest records, and whether it holds records."""

    table: pd.DataFrame
    summary: dict[str, Any]
    records: bool = False
    """True: record fields the child serialises as the parent did; False: ready texts."""


def child_rows(
    parent: Dataset,
    parent_config: DataConfig,
    feedback: Feedback,
    *,
    replay: float,
    holdout: float,
    seed: int,
) -> ChildRows:
    """The child's rows (see the module docstring); ``parent`` is the parent's whole dataset,
    ``parent_config`` its resolved data section."""
    if not 0 <= replay < 1:
        raise DataError(
            f"replay share {replay} is outside [0, 1)",
            hint="0 trains on feedback alone; 0.5 mixes as many parent rows as feedback rows",
        )
    if not 0 <= holdout < 1:
        raise DataError(f"feedback holdout {holdout} is outside [0, 1)", hint="e.g. 0.2")
    rows = feedback.frame
    n_test = round(len(rows) * holdout)
    is_test = np.zeros(len(rows), dtype=bool)
    if n_test:
        ids, labels = rows["id"].to_numpy(), rows["label"].to_numpy()
        is_test[stratified_sample(ids, labels, size=n_test, seed=seed)] = True
    n_train_feedback = int((~is_test).sum())
    if n_train_feedback < MIN_TRAIN_FEEDBACK:
        raise DataError(
            f"{len(rows)} feedback rows leave none to train on after holding out {holdout:.0%}",
            hint="collect more feedback or lower --holdout",
        )
    split = np.asarray(parent.split)
    train_positions = np.flatnonzero(split == "train")
    wanted = round(replay / (1 - replay) * n_train_feedback) if replay else 0
    replayed = (
        train_positions[
            stratified_sample(
                parent.ids[train_positions],
                parent.labels[train_positions].astype(str),
                size=wanted,
                seed=seed,
            )
        ]
        if wanted
        else np.array([], dtype=int)
    )
    kept = np.sort(np.r_[replayed, np.flatnonzero(split != "train")]).astype(int)
    fed_parts = np.where(is_test, "test", "train")
    records = feedback.records is not None and len(parent.records) > 0
    if records:
        table = _record_table(parent, parent_config, kept, feedback, fed_parts)
    else:
        table = _text_table(parent, kept, feedback, fed_parts)
    counts = {
        "feedback_rows": len(rows),
        "feedback_train_rows": n_train_feedback,
        "feedback_test_rows": int(is_test.sum()),
        "replay_share": replay,
        "replayed_rows": len(replayed),
        "parent_train_rows": len(train_positions),
        "parent_validation_rows": int((split == "validation").sum()),
        "parent_test_rows": int((split == "test").sum()),
        "holdout": holdout,
        "model_input": "records" if records else "texts",
    }
    return ChildRows(table.reset_index(drop=True), counts, records)


def _text_table(
    parent: Dataset, kept: np.ndarray, feedback: Feedback, fed_parts: np.ndarray
) -> pd.DataFrame:
    """id, text(s), label, group columns, split, origin: the texts as the parent's model read
    them, and the feedback's texts."""
    groups = list(parent.groups.columns)
    own = pd.DataFrame(
        {
            "id": [format_value(i) for i in parent.ids[kept]],
            "text": [parent.texts[i] for i in kept],
        }
    )
    if parent.text_pairs is not None:
        own["text_pair"] = [parent.text_pairs[i] for i in kept]
    own["label"] = [parent.label_names[i] for i in parent.labels[kept]]
    for column in groups:
        own[column] = parent.groups[column].to_numpy()[kept]
    own = _tagged(own, np.asarray(parent.split)[kept], "parent")
    fed = _tagged(feedback.frame.drop(columns=["received_utc"]), fed_parts, "feedback")
    if "text_pair" in own.columns and "text_pair" not in fed.columns:
        raise DataError(
            "the parent reads text pairs and the feedback has single texts",
            hint="feedback must be in the parent's schema",
        )
    return pd.concat([own, fed[list(own.columns)]], ignore_index=True)


def _record_table(
    parent: Dataset,
    config: DataConfig,
    kept: np.ndarray,
    feedback: Feedback,
    fed_parts: np.ndarray,
) -> pd.DataFrame:
    """id, record fields, sensitive, group and kept columns (as text), label, split, origin."""
    assert feedback.records is not None
    own_records = pd.concat([parent.records, parent.extra], axis=1)
    own_records = own_records.loc[:, ~own_records.columns.duplicated()].map(format_value)
    columns = list(own_records.columns)
    only_groups = [c for c in parent.groups.columns if c not in columns]
    reserved = {"id", "label", PART, ORIGIN} & {*columns, *only_groups}
    if reserved:
        raise DataError(
            f"the parent's data has columns named {sorted(reserved)}, which the child's table "
            "uses for itself",
            hint="rename those columns in the parent's data",
        )

    def block(
        ids: list[str], records: pd.DataFrame, groups: pd.DataFrame, labels: list[str]
    ) -> pd.DataFrame:
        out = pd.DataFrame({"id": ids})
        for column in columns:
            out[column] = records[column].to_numpy() if column in records else "unknown"
        for column in only_groups:
            out[column] = groups[column].to_numpy()
        out["label"] = labels
        return out

    own = block(
        [format_value(i) for i in parent.ids[kept]],
        own_records.iloc[kept].reset_index(drop=True),
        parent.groups.iloc[kept].reset_index(drop=True),
        [parent.label_names[i] for i in parent.labels[kept]],
    )
    own = _tagged(own, np.asarray(parent.split)[kept], "parent")
    fed = block(
        list(feedback.frame["id"]),
        feedback.records,
        feedback.frame,
        list(feedback.frame["label"]),
    )
    fed = _tagged(fed, fed_parts, "feedback")
    table = pd.concat([own, fed], ignore_index=True)
    fields = list(config.record_fields or [])
    again = records_to_text(
        table.iloc[: len(own)],
        fields,
        field_names=config.field_names,
        value_names=config.value_names,
    )
    if again != [parent.texts[i] for i in kept]:  # a guard: the child must read what it learnt
        raise DataError(
            "the parent's records could not be written so that they render to the same texts",
            hint="please report this; meanwhile feed the child from the serving store (texts)",
        )
    return table


def _tagged(frame: pd.DataFrame, parts: np.ndarray, origin: str) -> pd.DataFrame:
    out = frame.copy()
    out[PART] = parts
    out[ORIGIN] = origin
    return out


def child_data_config(
    parent: DataConfig, source: str, *, label_names: list[str], rows: ChildRows
) -> DataConfig:
    """The child's data section: the parent's (records) or a text table's, reading ``source``."""
    common: dict[str, Any] = {
        "source": source,
        "format": "parquet",
        "separator": None,
        "encoding": "utf-8",
        "id_field": "id",
        "label": "label",
        "label_names": label_names,
        "sample": None,
        "extra_train_source": None,
        "split": SplitConfig(column=PART, seed=parent.split.seed),
    }
    if rows.records:
        return parent.model_copy(update={**common, "keep_columns": [*parent.keep_columns, ORIGIN]})
    return DataConfig(
        **common,
        text_field="text",
        text_pair_field="text_pair" if "text_pair" in rows.table.columns else None,
        sensitive=list(parent.sensitive),
        groups=parent.groups,
        keep_columns=[ORIGIN],
        min_group_size=parent.min_group_size,
    )
