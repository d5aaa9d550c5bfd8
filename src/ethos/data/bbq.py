"""BBQ questions as a multiple-choice table, and a split that keeps templates apart.

:func:`bbq_table` turns the authors' jsonl rows (``ethos.datasets.bbq()``) into one row per
question with the three option texts, the gold ``label`` and the two indices the bias score needs
(:mod:`ethos.stats.bbq_bias`): the "unknown" option and the *target*, the option naming the
stereotyped group.

How the two are found, and why:

* **unknown_index** is the option whose answer_info group is ``unknown`` (case-insensitive), as
  the authors' R script finds it (``tolower(pred_cat) != "unknown"``). A row without exactly one
  such option is refused: every bundled row has one, and its text is always one of the script's
  ``unknowns`` list ("Can't be determined", "Not enough info", ...).
* **target_index**: the script reads ``target_loc`` from the authors' additional_metadata.csv,
  which is not bundled (see /work/shared/data/README.md), so it is derived from the jsonl: an
  option is the target when its answer_info group *or* its answer_info text equals one of
  ``additional_metadata.stereotyped_groups`` (trimmed, case-insensitive). Both are needed: in
  Age, Disability_status, Physical_appearance, Religion and Sexual_orientation the group carries
  the label (``old``, ``disabled``, ``obese``, ``Muslim``, ``gay``), in Nationality the group is
  a region (``Africa``) and the stereotyped groups list nationalities, which are the answer
  texts (``Nigerian``). ``target_index`` is the stereotyped option for *both* polarities; the
  metadata file's ``target_loc`` is the other option for non-negative questions (nyu-mll/BBQ
  issue 11), a difference :func:`ethos.stats.bbq_bias.bbq_bias_scores` accounts for.
* **When matching fails** (no option matches: ``target_match == "no_match"``) or is ambiguous
  (both group options match: ``"several_matches"``), ``target_index`` is left missing (NA) and
  the bias scores exclude the row and count it, as the script drops rows whose ``target_loc`` is
  NA ("in some versions of the data, 16 examples need to be removed"). On the six bundled
  categories (11,956 rows) every row matches exactly one option; :func:`target_match_counts`
  reports the counts for any table.

:func:`split_by_template` assigns whole templates, (category, question_index) groups, to one
part: BBQ's rows of one template differ only in the names filled in, so a template split across
train and test would leak the question being tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ethos.data.split import PARTS, _rank_key
from ethos.datasets import BBQ_CATEGORIES, bbq
from ethos.errors import DataError, listed

N_OPTIONS = 3
ROW_FIELDS = (
    "example_id",
    "question_index",
    "question_polarity",
    "context_condition",
    "category",
    "answer_info",
    "additional_metadata",
    "context",
    "question",
    "ans0",
    "ans1",
    "ans2",
    "label",
)
"""The fields of the authors' jsonl rows that :func:`bbq_table` reads (``id`` is optional)."""
TABLE_COLUMNS = (
    "id",
    "category",
    "example_id",
    "question_index",
    "question_polarity",
    "context_condition",
    "context",
    "question",
    "option_0",
    "option_1",
    "option_2",
    "label",
    "unknown_index",
    "target_index",
    "target_match",
)
TARGET_MATCHES = ("matched", "no_match", "several_matches")
"""How a row's target option was found; only ``matched`` rows have a ``target_index``."""


def load_bbq_table(categories: Sequence[str] = BBQ_CATEGORIES) -> pd.DataFrame:
    """The bundled BBQ categories as a multiple-choice table (:func:`bbq_table`)."""
    return bbq_table(bbq(categories))


def bbq_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per BBQ question: context, question, three options, label, unknown and target.

    ``rows`` are the authors' jsonl rows (``ethos.datasets.bbq()``). Columns of the result:
    :data:`TABLE_COLUMNS`; ``target_index`` is a nullable integer, missing where
    ``target_match`` is not ``"matched"`` (see the module docstring for the matching rule).
    Raises :class:`~ethos.errors.DataError` for a missing field, a category that is not bundled
    (the matching rule was checked on those only), a label outside 0..2 or a row without exactly
    one "unknown" option.
    """
    missing = [f for f in ROW_FIELDS if f not in rows.columns]
    if missing:
        raise DataError(
            f"BBQ rows lack field(s) {', '.join(missing)}",
            hint="pass the authors' jsonl rows, e.g. ethos.datasets.bbq()",
        )
    unknown_categories = sorted(set(rows["category"].astype(str)) - set(BBQ_CATEGORIES))
    if unknown_categories:
        raise DataError(
            f"unknown BBQ categor(ies) {', '.join(unknown_categories)}",
            hint=f"the target matching was checked on {', '.join(BBQ_CATEGORIES)}",
        )
    ids = (
        rows["id"].astype(str).tolist()
        if "id" in rows.columns
        else [f"bbq-{c}-{e}" for c, e in zip(rows["category"], rows["example_id"], strict=True)]
    )
    labels = pd.to_numeric(rows["label"], errors="coerce")
    bad_label = ~labels.isin(range(N_OPTIONS))
    if bad_label.any():
        shown = listed([ids[i] for i in np.flatnonzero(bad_label)])
        raise DataError(f"BBQ label must be an option index 0..2; not on {shown}")
    unknown, target, match = [], [], []
    for row_id, info, metadata in zip(
        ids, rows["answer_info"], rows["additional_metadata"], strict=True
    ):
        options = _option_names(row_id, info)
        unknown_index = _unknown_index(row_id, options)
        target_index, how = _target_index(options, unknown_index, _stereotyped(row_id, metadata))
        unknown.append(unknown_index)
        target.append(target_index)
        match.append(how)
    table = pd.DataFrame(
        {
            "id": ids,
            "category": rows["category"].astype(str).to_numpy(),
            "example_id": rows["example_id"].to_numpy(),
            "question_index": rows["question_index"].astype(str).to_numpy(),
            "question_polarity": rows["question_polarity"].to_numpy(),
            "context_condition": rows["context_condition"].to_numpy(),
            "context": rows["context"].to_numpy(),
            "question": rows["question"].to_numpy(),
            "option_0": rows["ans0"].to_numpy(),
            "option_1": rows["ans1"].to_numpy(),
            "option_2": rows["ans2"].to_numpy(),
            "label": labels.astype(int).to_numpy(),
            "unknown_index": unknown,
            "target_index": pd.array(target, dtype="Int64"),
            "target_match": match,
        }
    )
    return table


def target_match_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many rows of a :func:`bbq_table` matched their target once, never, or twice."""
    counts = table["target_match"].value_counts()
    return {how: int(counts.get(how, 0)) for how in TARGET_MATCHES}


def split_by_template(
    table: pd.DataFrame, *, test_fraction: float, validation_fraction: float, seed: int
) -> pd.Series:
    """Each row's part (train, validation, test), whole (category, question_index) templates.

    Within each category the templates are ordered by a hash of (seed, category, template), so
    the split depends on the seed alone, not on row order. A template goes to test when the middle
    of its rows falls in the first ``test_fraction`` of the category's rows in that order, to
    validation when it falls in the next ``validation_fraction``, else to train: the parts get
    roughly the requested share of each category's *rows* (templates differ in size). A category
    of at least three templates gets at least one in every part asked for. Returns a Series named
    ``split`` aligned with ``table``'s index.
    """
    for name, value in (
        ("test_fraction", test_fraction),
        ("validation_fraction", validation_fraction),
    ):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if test_fraction + validation_fraction >= 1.0:
        raise ValueError(
            f"test_fraction + validation_fraction must leave rows for training, "
            f"got {test_fraction} + {validation_fraction}"
        )
    missing = [c for c in ("category", "question_index") if c not in table.columns]
    if missing:
        raise DataError(f"the BBQ table lacks column(s) {', '.join(missing)}")
    if table.empty:
        raise DataError("the BBQ table is empty: nothing to split")
    keys = table["category"].astype(str) + "\x1f" + table["question_index"].astype(str)
    sizes = keys.value_counts()
    part_of: dict[str, str] = {}
    for category in sorted(table["category"].astype(str).unique()):
        templates = [k for k in sizes.index if k.split("\x1f", 1)[0] == category]
        templates.sort(key=lambda k: _rank_key(seed, k))
        counts = np.array([sizes[k] for k in templates], dtype=float)
        middles = (np.cumsum(counts) - counts / 2) / counts.sum()
        parts = np.where(
            middles < test_fraction,
            "test",
            np.where(middles < test_fraction + validation_fraction, "validation", "train"),
        )
        _ensure_each_part(parts, test_fraction, validation_fraction)
        part_of.update(zip(templates, parts.tolist(), strict=True))
    return pd.Series(keys.map(part_of).to_numpy(), index=table.index, name="split")


def _ensure_each_part(parts: np.ndarray, test_fraction: float, validation: float) -> None:
    """Give a requested part that got no template the first one from the largest other part,
    so a small fraction still yields a test template (needs at least three templates)."""
    if len(parts) < len(PARTS):
        return
    for part, fraction in (("test", test_fraction), ("validation", validation)):
        if fraction > 0 and not (parts == part).any():
            names, counts = np.unique(parts, return_counts=True)
            donor = names[np.argmax(counts)]
            parts[np.flatnonzero(parts == donor)[0]] = part


def _option_names(row_id: str, info: Any) -> list[tuple[str, str]]:
    """The (text, group) of ans0..ans2 from answer_info, or an error naming the row."""
    if not isinstance(info, Mapping):
        raise DataError(f"BBQ row {row_id}: answer_info is not a mapping: {info!r}")
    options = []
    for i in range(N_OPTIONS):
        pair = info.get(f"ans{i}")
        if pair is None or len(pair) != 2:
            raise DataError(f"BBQ row {row_id}: answer_info ans{i} is not [text, group]: {pair!r}")
        options.append((str(pair[0]), str(pair[1])))
    return options


def _unknown_index(row_id: str, options: list[tuple[str, str]]) -> int:
    found = [i for i, (_, group) in enumerate(options) if _norm(group) == "unknown"]
    if len(found) != 1:
        raise DataError(
            f"BBQ row {row_id}: {len(found)} options have answer_info group 'unknown', "
            f"expected exactly one: {options}"
        )
    return found[0]


def _stereotyped(row_id: str, metadata: Any) -> set[str]:
    groups = metadata.get("stereotyped_groups") if isinstance(metadata, Mapping) else None
    if groups is None:
        raise DataError(f"BBQ row {row_id}: additional_metadata has no stereotyped_groups")
    return {_norm(g) for g in groups}


def _target_index(
    options: list[tuple[str, str]], unknown_index: int, stereotyped: set[str]
) -> tuple[int | None, str]:
    """The option whose group or text is a stereotyped group, and how the match went."""
    found = [
        i
        for i, (text, group) in enumerate(options)
        if i != unknown_index and {_norm(text), _norm(group)} & stereotyped
    ]
    if len(found) == 1:
        return found[0], "matched"
    return None, "no_match" if not found else "several_matches"


def _norm(name: str) -> str:
    return str(name).strip().casefold()
