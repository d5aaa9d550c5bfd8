"""Prompt/response pairs for supervised fine-tuning of a causal LM (``task: causal_lm``).

A table (CSV, JSONL or Parquet) with a prompt column and a response column, named by the
``causal_lm`` section. The split is by prompt: every row of one prompt text lands in one part,
so a held-out prompt was never seen in training with another response (the exact-match score
on held-out prompts would otherwise measure recall of the training set).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ethos.config import RunConfig
from ethos.data.fingerprint import fingerprint_rows
from ethos.data.split import PARTS, stratified_split
from ethos.data.tables import read_table
from ethos.errors import DataError, listed

MAX_TEXT_CHARS = 200_000
"""Longest prompt or response accepted: a row this long is a file read wrong, not a dialogue."""


@dataclass(frozen=True)
class PromptPairs:
    """Rows ``id``, ``prompt``, ``response`` and ``split`` (train / validation / test)."""

    name: str
    source: str
    table: pd.DataFrame
    fingerprint: str

    def __len__(self) -> int:
        return len(self.table)

    def part(self, name: str) -> pd.DataFrame:
        if name not in PARTS:
            raise ValueError(f"unknown split part {name!r}; expected one of {PARTS}")
        return self.table[self.table["split"] == name].reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """The facts the manifest records about the data."""
        split = self.table["split"]
        return {
            "name": self.name,
            "source": self.source,
            "format": "prompt-response pairs",
            "rows": len(self),
            "prompts": int(self.table["prompt"].nunique()),
            "fingerprint": self.fingerprint,
            "split_counts": {p: int((split == p).sum()) for p in PARTS},
        }


def load_prompt_pairs(config: RunConfig) -> PromptPairs:
    """The pairs of ``config.data.source``, checked and split by prompt."""
    data = config.data
    columns = config.causal
    source = Path(data.source)
    table = read_table(source, fmt=data.format, encoding=data.encoding, separator=data.separator)
    wanted = [columns.prompt_field, columns.response_field]
    missing = [name for name in wanted if name not in table.columns]
    if missing:
        raise DataError(
            f"{source} has no column {listed(missing)} (it has {listed(list(table.columns), 8)})",
            hint="name the columns in the causal_lm section: prompt_field, response_field",
        )
    pairs = pd.DataFrame(
        {
            "prompt": _texts(table[columns.prompt_field], source, columns.prompt_field),
            "response": _texts(table[columns.response_field], source, columns.response_field),
        }
    )
    if data.id_field is not None:
        if data.id_field not in table.columns:
            raise DataError(f"{source} has no id column '{data.id_field}'")
        ids = table[data.id_field].astype(str)
        if ids.duplicated().any():
            repeated = ids[ids.duplicated()].iloc[0]
            raise DataError(f"{source} repeats ids in '{data.id_field}' (e.g. {repeated!r})")
        pairs.insert(0, "id", ids.to_numpy())
    else:
        pairs.insert(0, "id", [f"row-{i}" for i in range(len(pairs))])
    if data.sample is not None and data.sample < len(pairs):
        keep = np.sort(
            np.random.default_rng(data.split.seed).permutation(len(pairs))[: data.sample]
        )
        pairs = pairs.iloc[keep].reset_index(drop=True)
    pairs["split"] = _split_by_prompt(pairs["prompt"], config)
    fingerprint = fingerprint_rows(
        {name: pairs[name].tolist() for name in ("id", "prompt", "response", "split")},
        id_column="id",
    )
    return PromptPairs(source.name.split(".")[0], str(source), pairs, fingerprint)


def _texts(column: pd.Series, source: Path, name: str) -> list[str]:
    values = column.tolist()
    for number, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            shown = "empty" if isinstance(value, str) else f"not text ({value!r})"
            raise DataError(
                f"{source}: row {number + 1}'s {name} is {shown}",
                hint="every pair needs a prompt and a response; remove or fill that row",
            )
        if len(value) > MAX_TEXT_CHARS:
            raise DataError(
                f"{source}: row {number + 1}'s {name} is {len(value):,} characters long "
                f"(at most {MAX_TEXT_CHARS:,})",
                hint="check the file's format: a whole file read as one cell looks like this",
            )
    return values


def _split_by_prompt(prompts: pd.Series, config: RunConfig) -> np.ndarray:
    split = config.data.split
    unique = pd.unique(prompts)
    if len(unique) < 3:
        raise DataError(
            f"{config.data.source} has {len(unique)} distinct prompt(s); a train, validation "
            "and test part need at least 3",
            hint="add pairs with other prompts",
        )
    parts = stratified_split(
        list(unique),
        ["all"] * len(unique),
        validation=split.validation,
        test=split.test,
        seed=split.seed,
    )
    of_prompt = dict(zip(unique, parts, strict=True))
    return np.array([of_prompt[p] for p in prompts], dtype=object)
