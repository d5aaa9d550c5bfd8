from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethos import DataConfig, load_dataset
from ethos.data import stratified_split

FINGERPRINT_SCRIPT = """
import sys, warnings
warnings.simplefilter("ignore")
from ethos import DataConfig, load_dataset
print(load_dataset(DataConfig(source=sys.argv[1])).fingerprint)
"""


def fingerprint_in_new_process(source: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", FINGERPRINT_SCRIPT, source],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def test_same_data_same_fingerprint_across_processes() -> None:
    first = fingerprint_in_new_process("german")
    second = fingerprint_in_new_process("german")
    assert first == second
    assert len(first) == 64
    assert load_dataset(DataConfig(source="german")).fingerprint == first


def _rows(tmp_path: Path, frame: pd.DataFrame, name: str) -> DataConfig:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return DataConfig(source=str(path), id_field="id", text_field="t", label="y", groups=["g"])


def _frame() -> pd.DataFrame:
    n = 200
    return pd.DataFrame(
        {
            "id": [f"x{i}" for i in range(n)],
            "t": [f"text number {i}" for i in range(n)],
            "y": ["a", "b", "b", "b"] * (n // 4),
            "g": ["p", "q"] * (n // 2),
        }
    )


def test_one_cell_change_changes_the_fingerprint(tmp_path: Path) -> None:
    base = load_dataset(_rows(tmp_path, _frame(), "a.csv")).fingerprint
    for column, value in (("t", "text number 17!"), ("y", "a"), ("g", "r")):
        edited = _frame()
        edited.loc[17, column] = value
        changed = load_dataset(_rows(tmp_path, edited, f"{column}.csv")).fingerprint
        assert changed != base, column


def test_row_order_does_not_change_fingerprint_or_split(tmp_path: Path) -> None:
    frame = _frame()
    original = load_dataset(_rows(tmp_path, frame, "a.csv"))
    shuffled = load_dataset(_rows(tmp_path, frame.sample(frac=1.0, random_state=3), "b.csv"))
    assert original.fingerprint == shuffled.fingerprint
    parts = dict(zip(original.ids, original.split, strict=True))
    assert all(parts[i] == p for i, p in zip(shuffled.ids, shuffled.split, strict=True))


def test_split_seed_changes_split_and_fingerprint(tmp_path: Path) -> None:
    config = _rows(tmp_path, _frame(), "a.csv")
    other = config.model_copy(update={"split": config.split.model_copy(update={"seed": 99})})
    first, second = load_dataset(config), load_dataset(other)
    assert (first.split != second.split).any()
    assert first.fingerprint != second.fingerprint


def test_split_is_stratified_and_group_aware(tmp_path: Path) -> None:
    dataset = load_dataset(_rows(tmp_path, _frame(), "a.csv"))
    for part in ("train", "validation", "test"):
        chunk = dataset.part(part)
        share_a = (chunk.labels == 0).mean()
        assert abs(share_a - 0.25) < 0.05, part
        assert set(chunk.groups["g"]) == {"p", "q"}
    assert abs((dataset.split == "test").sum() - 30) <= 1


def test_tiny_strata_still_reach_every_part() -> None:
    ids = [str(i) for i in range(9)]
    parts = stratified_split(ids, ["s"] * 9, validation=0.1, test=0.1, seed=1)
    assert sorted(set(parts)) == ["test", "train", "validation"]


def test_predefined_split_column(tmp_path: Path) -> None:
    frame = _frame()
    frame["part"] = np.where(np.arange(200) < 150, "train", "test")
    config = _rows(tmp_path, frame, "a.csv")
    config = config.model_copy(update={"split": config.split.model_copy(update={"column": "part"})})
    dataset = load_dataset(config)
    assert (dataset.split == "test").sum() == 50
    frame.loc[0, "part"] = "holdout"
    bad = _rows(tmp_path, frame, "b.csv")
    bad = bad.model_copy(update={"split": bad.split.model_copy(update={"column": "part"})})
    with pytest.raises(Exception, match=r"split column 'part' has values \['holdout'\]"):
        load_dataset(bad)
