"""A user's own file: separators, every missing column in one error, and label names for coded
labels — each with the file that used to fail and the message asserted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ethos import ConfigError, DataConfig, DataError, load_config, load_dataset
from ethos.data.tables import detect_separator, read_table


def rows(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "amount": [f"{1000 + i},5" for i in range(n)],  # decimal commas, as Excel writes
            "purpose": ["car", "house"] * (n // 2),
            "sex": ["female", "male", "male", "female"] * (n // 4),
            "defaulted": [0, 1, 1, 0, 0] * (n // 5),
        }
    )


def config(path: Path, **overrides: Any) -> DataConfig:
    base: dict[str, Any] = {
        "source": str(path),
        "id_field": "id",
        "record_fields": ["amount", "purpose"],
        "label": "defaulted",
        "sensitive": ["sex"],
        "min_group_size": 1,
    }
    return DataConfig(**{**base, **overrides})


@pytest.mark.parametrize(("sep", "name"), [(";", "semi.csv"), ("|", "pipe.csv"), ("\t", "t.csv")])
def test_the_separator_is_detected(tmp_path: Path, sep: str, name: str) -> None:
    path = tmp_path / name
    rows().to_csv(path, sep=sep, index=False)
    dataset = load_dataset(config(path))
    assert len(dataset) == 40
    assert dataset.texts[0] == "amount: 1000,5; purpose: car"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1,5;2,5;3\n", ";"),  # commas inside the values, not in the header
        ('a,b\n"x;y;z",1\n"p;q",2\n', ","),  # a clean comma file wins whatever it quotes
        ("a\tb\n1\t2\n", "\t"),
        ("a|b\n1|2\n", "|"),
        ("a;b\n1;2;3\n", None),  # ragged: no separator fits every line
        ("just one column\nvalue\n", None),
        ("", None),
    ],
)
def test_detect_separator(text: str, expected: str | None) -> None:
    assert detect_separator(text) == expected


def test_detection_ignores_a_line_cut_at_the_sample_end() -> None:
    head = "a;b;c\n" + "1;2;3\n" * 20_000  # longer than the sample
    assert detect_separator(head + "1;2") == ";"


def test_explicit_separator_wins_and_a_squashed_file_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    rows().to_csv(path, sep=";", index=False)
    assert len(read_table(path, separator=";").columns) == 5
    with pytest.raises(DataError) as err:
        load_dataset(config(path, separator=","))
    message = str(err.value)
    assert "read as a single column named 'id;amount;purpose;sex;defaulted'" in message
    assert "set data.separator: ';'" in message


def test_a_ragged_semicolon_file_names_the_separator_then_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("id;label;text\n1;a;x\n2;b;y;surplus\n")
    with pytest.raises(DataError, match=r"single column .* contains ';'"):
        read_table(path)
    with pytest.raises(DataError, match=r"not a well-formed CSV: .*line 3"):
        read_table(path, separator=";")


def test_separator_config_values(tmp_path: Path) -> None:
    assert DataConfig(source="x.csv", separator="tab").separator == "\t"
    assert DataConfig(source="x.csv", separator="\\t").separator == "\t"
    for bad in (";;", '"', "\n", ""):
        with pytest.raises(ValueError, match="separator must be one character"):
            DataConfig(source="x.csv", separator=bad)
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  source: x.csv\n  separator: ';;'\n")
    with pytest.raises(ConfigError, match=r"data\.separator \(line 3\)"):
        load_config(path)


def test_every_missing_column_is_reported_in_one_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    rows().to_csv(path, index=False)
    wrong = config(
        path,
        label="default",
        record_fields=["amount", "purpse", "income"],
        sensitive=["sex", "race"],
        groups=["race"],
    )
    with pytest.raises(DataError) as err:
        load_dataset(wrong)
    message = str(err.value)
    assert "has none of these 4 columns the config names" in message
    assert "'default' (named by data.label): did you mean 'defaulted'?" in message
    assert "'purpse' (named by data.text fields): did you mean 'purpose'?" in message
    assert "'income' (named by data.text fields)" in message
    assert "'race' (named by data.sensitive, data.groups)" in message
    assert "available columns: id, amount, purpose, sex, defaulted" in message


def test_label_names_name_integer_labels_by_position(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    rows().to_csv(path, index=False)
    dataset = load_dataset(config(path, label_names=["repaid", "defaulted"]))
    assert dataset.label_names == ("repaid", "defaulted")
    expected = rows()["defaulted"].to_numpy()
    assert np.array_equal(dataset.labels, expected)
    assert dataset.label_counts() == {"repaid": 24, "defaulted": 16}


def test_label_names_that_are_the_values_keep_their_order(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    rows().to_csv(path, index=False)
    dataset = load_dataset(config(path, label_names=["1", "0"]))
    assert dataset.label_names == ("1", "0")
    assert np.array_equal(dataset.labels, 1 - rows()["defaulted"].to_numpy())


def test_integer_labels_beyond_the_names_are_refused_with_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    rows().assign(defaulted=[1, 2] * 20).to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_dataset(config(path, label_names=["repaid", "defaulted"]))
    assert "label values '1', '2'" in str(err.value)
    assert "integer labels 0..1 are named by position" in str(err.value)


@pytest.mark.parametrize(
    ("yaml_names", "expected"),
    [("[0, 1]", ["0", "1"]), ("[0.0, 1.0]", ["0", "1"]), ("['no', 'yes']", ["no", "yes"])],
)
def test_label_names_in_yaml_may_be_numbers(
    tmp_path: Path, yaml_names: str, expected: list[str]
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"data:\n  source: x.csv\n  label_names: {yaml_names}\n")
    assert load_config(path).data.label_names == expected


@pytest.mark.parametrize(
    ("yaml_names", "message"),
    [
        ("[no, yes]", r"label_names \(line 3\).*YAML boolean.*quote"),
        ("[a, a, b]", "must be distinct; repeated: \\['a'\\]"),
        ("[only]", "at least two label names"),
    ],
)
def test_bad_label_names_are_refused_with_the_fix(
    tmp_path: Path, yaml_names: str, message: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"data:\n  source: x.csv\n  label_names: {yaml_names}\n")
    with pytest.raises(ConfigError, match=rf"(?s){message}"):
        load_config(path)


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"text": "one\u2028two\x85three", "label": "a"}\n{"text": "b", "label": "b"}\n',
        encoding="utf-8",
    )
    table = read_table(path)
    assert table["text"].tolist() == ["one\u2028two\x85three", "b"]


def test_scrubbing_a_semicolon_latin1_file_fingerprints_its_utf8_comma_copy(
    tmp_path: Path,
) -> None:
    """The masked copy is written as UTF-8 with commas; re-reading it with the source's
    separator and encoding used to fail (one squashed column) or garble the text."""
    from ethos.data.scrub import scrub_dataset

    frame = pd.DataFrame(
        {
            "note": [f"Café visit {i}, write to ana{i}@example.org" for i in range(12)],
            "outcome": ["sick", "well"] * 6,
            "sex": ["female", "male", "male", "female"] * 3,
        }
    )
    frame.to_csv(tmp_path / "notes.csv", sep=";", index=False, encoding="latin-1")
    config = tmp_path / "run.yaml"
    config.write_text(
        "data:\n  source: notes.csv\n  separator: ';'\n  encoding: latin-1\n  text_field: note\n"
        "  label: outcome\n  sensitive: [sex]\n  min_group_size: 1\n"
    )
    output = tmp_path / "masked.csv"
    result = scrub_dataset(config, output, entities=["EMAIL_ADDRESS"], progress=False)
    copy = DataConfig(
        source=str(output), text_field="note", label="outcome", sensitive=["sex"], min_group_size=1
    )
    masked = load_dataset(copy)
    assert result.fingerprint_after == masked.fingerprint
    assert masked.texts[0] == "Café visit 0, write to <EMAIL_ADDRESS>"
