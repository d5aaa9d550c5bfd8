"""Every validation rule of the data layer, each with a hostile file and the message asserted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ethos import DataConfig, DataError, load_dataset


def make_rows(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "note": [f"patient reports symptom {i % 7}" for i in range(n)],
            "age": rng.integers(18, 90, n),
            "sex": ["female", "male"] * (n // 2),
            "outcome": ["sick", "well", "well"] * (n // 3),
        }
    )


def config(path: Path, **overrides: Any) -> DataConfig:
    base: dict[str, Any] = {
        "source": str(path),
        "id_field": "id",
        "text_field": "note",
        "label": "outcome",
        "sensitive": ["sex"],
        "min_group_size": 5,
    }
    base.update(overrides)
    return DataConfig(**base)


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_good_csv_loads(tmp_path: Path) -> None:
    dataset = load_dataset(config(write_csv(tmp_path, make_rows())))
    assert len(dataset) == 60
    assert dataset.label_names == ("sick", "well")
    assert set(dataset.split) == {"train", "validation", "test"}
    assert "60 rows" in repr(dataset) and "group sex: female 30, male 30" in repr(dataset)


def test_jsonl_and_parquet_and_gzip_give_the_same_fingerprint(tmp_path: Path) -> None:
    frame = make_rows()
    csv = write_csv(tmp_path, frame)
    jsonl = tmp_path / "rows.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as handle:
        for row in frame.to_dict(orient="records"):
            handle.write(json.dumps({k: (int(v) if k == "age" else v) for k, v in row.items()}))
            handle.write("\n")
    parquet = tmp_path / "rows.parquet"
    frame.to_parquet(parquet)
    prints = {load_dataset(config(p)).fingerprint for p in (csv, jsonl, parquet)}
    assert len(prints) == 1


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data file .*absent\.csv does not exist"):
        load_dataset(config(tmp_path / "absent.csv"))


def test_directory_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "rows.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="is not a regular file"):
        load_dataset(config(folder))


def test_unknown_column_names_it_and_suggests(tmp_path: Path) -> None:
    path = write_csv(tmp_path, make_rows())
    with pytest.raises(DataError) as err:
        load_dataset(config(path, label="outcom"))
    message = str(err.value)
    assert f"{path} has no column 'outcom' (named by data.label)" in message
    assert "did you mean 'outcome'?" in message


@pytest.mark.parametrize("content", ["", "\n\n", "id,note,outcome,sex\n"])
def test_empty_csv(tmp_path: Path, content: str) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=r"(is empty|has no rows)"):
        load_dataset(config(path))


def test_empty_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n   \n")
    with pytest.raises(DataError, match=r"rows.jsonl is empty"):
        load_dataset(config(path))


def test_single_class_label(tmp_path: Path) -> None:
    frame = make_rows().assign(outcome="well")
    with pytest.raises(DataError, match=r"has a single class \('well'\) in all 60 rows"):
        load_dataset(config(write_csv(tmp_path, frame)))


def test_missing_labels_name_the_rows(tmp_path: Path) -> None:
    frame = make_rows()
    frame.loc[[3, 10], "outcome"] = None
    with pytest.raises(DataError, match=r"'outcome' is empty in rows 4, 11 \(2 of 60\)"):
        load_dataset(config(write_csv(tmp_path, frame)))


def test_label_outside_declared_names(tmp_path: Path) -> None:
    path = write_csv(tmp_path, make_rows())
    with pytest.raises(DataError, match=r"label values 'well' .* not among data.label_names"):
        load_dataset(config(path, label_names=["sick", "healthy"]))


def test_non_utf8_bytes_name_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(b"id,note,outcome,sex\nr1,caf\xe9 au lait,well,male\n")
    with pytest.raises(DataError) as err:
        load_dataset(config(path))
    message = str(err.value)
    assert "not valid utf-8: byte 0xe9 at offset 26 (line 2)" in message
    assert "iconv" in message
    path.write_bytes(b"id,note,outcome,sex\nr1,caf\xe9,well,male\nr2,tea,sick,female\n")
    latin1 = load_dataset(config(path, encoding="latin-1", min_group_size=1))
    assert latin1.texts[0] == "caf\u00e9"
    with pytest.raises(DataError, match="unknown text encoding 'klingon'"):
        load_dataset(config(path, encoding="klingon"))


def test_duplicate_ids(tmp_path: Path) -> None:
    frame = make_rows()
    frame.loc[5, "id"] = "r0"
    with pytest.raises(DataError, match=r"duplicate ids 'r0' \(2 rows\)"):
        load_dataset(config(write_csv(tmp_path, frame)))


def test_small_group_warns(tmp_path: Path) -> None:
    frame = make_rows()
    frame.loc[:3, "sex"] = "intersex"
    with pytest.warns(UserWarning, match=r"below data.min_group_size=5: intersex \(4 rows\)"):
        dataset = load_dataset(config(write_csv(tmp_path, frame)))
    assert any("intersex" in w for w in dataset.warnings)


def test_long_texts_warn_with_counts(tmp_path: Path) -> None:
    def whitespace_tokens(texts: Any, pairs: Any) -> np.ndarray:
        return np.array([len(t.split()) + 2 for t in texts])

    frame = make_rows()
    frame.loc[:9, "note"] = "word " * 300
    with pytest.warns(UserWarning, match=r"10 of 60 texts \(16.7%\) are longer than .*=64"):
        load_dataset(
            config(write_csv(tmp_path, frame)), max_length=64, count_tokens=whitespace_tokens
        )


def test_missing_text_names_rows(tmp_path: Path) -> None:
    frame = make_rows()
    frame.loc[7, "note"] = None
    with pytest.raises(DataError, match=r"text column 'note' is empty in row 8"):
        load_dataset(config(write_csv(tmp_path, frame)))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": "r1", "note": "x", ', r"line 2 is not valid JSON"),
        ('["r1", "x", "well"]', r"line 2 is a JSON list, not an object"),
        ("[" * 100000 + "]" * 100000, r"line 2 (is nested too deeply|is a JSON list)"),
    ],
)
def test_malformed_jsonl(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "r0", "note": "ok", "outcome": "well", "sex": "male"}\n' + line + "\n")
    with pytest.raises(DataError, match=expected):
        load_dataset(config(path))


def test_garbage_parquet_and_truncated_gzip(tmp_path: Path) -> None:
    parquet = tmp_path / "rows.parquet"
    parquet.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_dataset(config(parquet))
    gz = tmp_path / "rows.csv.gz"
    gz.write_bytes(gzip.compress(b"id,note,outcome,sex\n" * 100)[:30])
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(config(gz))


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "rows.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(DataError, match="cannot tell the format"):
        load_dataset(config(path))


def test_ragged_csv(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('id,note,outcome,sex\nr1,"unterminated,well,male\nr2,b,c,d,e,f\n')
    with pytest.raises(DataError, match="not a well-formed CSV"):
        load_dataset(config(path))


def test_hostile_cell_content_is_kept_verbatim(tmp_path: Path) -> None:
    frame = make_rows()
    frame.loc[0, "note"] = "=cmd|' /C calc'!A0 <script>alert(1)</script> \u202e\u0000"
    dataset = load_dataset(config(write_csv(tmp_path, frame)))
    assert dataset.texts[0].startswith("=cmd|")


def test_huge_table_loads(tmp_path: Path) -> None:
    n = 120_000
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "note": ["short note"] * n,
            "outcome": np.where(np.arange(n) % 3 == 0, "sick", "well"),
            "sex": np.where(np.arange(n) % 2 == 0, "female", "male"),
        }
    )
    dataset = load_dataset(config(write_csv(tmp_path, frame)))
    assert len(dataset) == n
    assert abs((dataset.split == "test").mean() - 0.15) < 0.001


def test_forbidden_and_label_fields_never_reach_the_model(tmp_path: Path) -> None:
    path = write_csv(tmp_path, make_rows())
    records = {"text_field": None, "record_fields": ["age", "note"]}
    with pytest.raises(DataError, match="must never be model input"):
        load_dataset(config(path, **records, forbidden_fields=["age"]))
    with pytest.raises(DataError, match="label column 'outcome' is also listed as model input"):
        load_dataset(config(path, text_field=None, record_fields=["age", "outcome"]))


def test_sensitive_attributes_are_excluded_unless_explicitly_included(tmp_path: Path) -> None:
    path = write_csv(tmp_path, make_rows())
    records = {"text_field": None, "record_fields": ["age", "sex"]}
    excluded = load_dataset(config(path, **records))
    assert all("sex" not in text for text in excluded.texts)
    assert excluded.text_fields == ("age",)
    assert not excluded.text_includes_sensitive
    assert any("removed from the model text" in note for note in excluded.notes)
    included = load_dataset(config(path, **records, include_sensitive_in_text=True))
    assert included.texts[0].endswith("sex: female")
    assert included.text_includes_sensitive
    assert included.summary()["text_includes_sensitive"] is True
    assert any("explicit choice" in note for note in included.notes)
