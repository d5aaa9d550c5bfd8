"""`ethos init --from`: the proposed roles, the written YAML (every key explained, odd column
names surviving the round trip), and the files it must refuse with a message."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ethos import DataError, load_config, load_dataset
from ethos.config import DataConfig, ModelConfig, RunConfig, SplitConfig
from ethos.data import init_config
from ethos.data.init_config import name_words, propose, write_config_from_file
from ethos.errors import EthosError


def applicants(n: int = 60) -> pd.DataFrame:
    """A small credit table with the usual suspects: an id, a coded outcome, protected
    attributes, a vendor score, a constant and a column of names."""
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "Applicant ID": [f"a{i:03d}" for i in range(n)],
            "full_name": [f"Person Number{i}" for i in range(n)],
            "amount": rng.integers(500, 9000, n),
            "purpose": rng.choice(["car", "house", "education"], n),
            "Gender": ["female", "male"] * (n // 2),
            "applicantAge": rng.integers(18, 80, n),
            "vendor_score": rng.uniform(size=n).round(3),
            "country": "DE",
            "Outcome": ["yes", "no", "no"] * (n // 3),
        }
    )


def write(frame: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(path, sep=sep, index=False)
    return path


def test_name_words_split_camel_case_and_punctuation_but_not_inside_words() -> None:
    assert name_words("applicantAge") == {"applicant", "age"}
    assert name_words("Age Band (years)") == {"age", "band", "years"}
    assert "age" not in name_words("percentage") | name_words("mileage") | name_words("page")


def test_roles_are_proposed_from_names_and_values(tmp_path: Path) -> None:
    proposal = propose(write(applicants(), tmp_path / "loans.csv"))
    assert proposal.label is not None and proposal.label.name == "Outcome"
    assert proposal.label.values == ("no", "yes")
    assert proposal.id_field == "Applicant ID"
    assert proposal.sensitive == ("Gender", "applicantAge")
    assert proposal.groups == ("Gender",)  # 40-odd ages are too many groups to compare
    assert any("'applicantAge' has" in c and "banded copy" in c for c in proposal.checks)
    assert proposal.keep_columns == ("vendor_score",)
    assert proposal.record_fields == ("amount", "purpose")
    left_out = dict(proposal.left_out)
    assert "single value" in left_out["country"]
    assert "identifier or a name" in left_out["full_name"]


def test_the_last_two_valued_column_is_the_label_when_none_is_named(tmp_path: Path) -> None:
    frame = applicants().rename(columns={"Outcome": "repaid"})
    proposal = propose(write(frame, tmp_path / "loans.csv"))
    assert proposal.label is not None and proposal.label.name == "repaid"
    assert "last column with two values" in proposal.label_reason
    assert "Gender" in proposal.sensitive  # a binary protected attribute is never the label


def test_one_free_text_column_becomes_text_field(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "note": [
                f"patient {i} reports a lasting cough and mild fever, day {i}" for i in range(40)
            ],
            "sex": ["f", "m"] * 20,
            "label": ["sick", "well"] * 20,
        }
    )
    proposal = propose(write(frame, tmp_path / "notes.jsonl"))
    assert proposal.text_field == "note" and proposal.record_fields == ()
    assert proposal.format == "jsonl" and proposal.separator is None


def test_a_split_column_is_used_as_the_predefined_split(tmp_path: Path) -> None:
    frame = applicants().assign(fold=["train", "train", "validation", "test"] * 15)
    proposal = propose(write(frame, tmp_path / "loans.parquet"))
    assert proposal.split_column == "fold"
    config = load_config(_written(tmp_path, tmp_path / "loans.parquet"))
    assert config.data.split.column == "fold"


def _written(tmp_path: Path, data: Path, name: str = "ethos.yaml", **options: str) -> Path:
    config = tmp_path / name
    write_config_from_file(data, config, **options)  # type: ignore[arg-type]
    return config


KEY_LINE = re.compile(r"^ *(?:# )?([a-z_]+):")
FIRST_RUN_TRAIN_KEYS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "max_steps",
    "class_weights",
    "early_stopping",
    "peft",
    "fairness",
    "privacy",
)


def test_every_config_key_is_written_and_explained(tmp_path: Path) -> None:
    """Each key of data, split, model and the top level (and the train keys a first run needs)
    is in the file, set or commented out, right below a comment that explains it; a key added
    to the schema but not to the template fails here."""
    text = _written(tmp_path, write(applicants(), tmp_path / "loans.csv")).read_text()
    lines = text.splitlines()
    first: dict[str, int] = {}
    for number, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if match:
            first.setdefault(match.group(1), number)
    expected = (
        set(DataConfig.model_fields)
        | set(SplitConfig.model_fields)
        | set(ModelConfig.model_fields)
        # the task sections of the other tasks (this template proposes a classifier)
        | (set(RunConfig.model_fields) - {"data", "model", "train", "qa", "choices", "causal_lm"})
        | set(FIRST_RUN_TRAIN_KEYS)
    )
    for key in sorted(expected):
        assert key in first, f"{key} is not in the proposed config"
        above = lines[first[key] - 1]
        if key != "split":
            assert above.lstrip().startswith("#") and not KEY_LINE.match(above), key
    for key in ("max_steps", "sample", "text_field", "intended_use"):
        assert re.search(rf"^ *# {key}:", text, re.M), f"{key} is offered, commented out"


def test_the_written_config_loads_and_its_data_validates(tmp_path: Path) -> None:
    data = write(applicants(), tmp_path / "loans.csv", sep=";")
    config = load_config(_written(tmp_path, data))
    assert config.data.separator == ";"
    assert config.data.label == "Outcome" and config.data.label_names == ["no", "yes"]
    assert config.data.source == str(data.resolve())
    assert config.intended_use is None and config.train.max_steps is None
    dataset = load_dataset(config.data)
    assert len(dataset) == 60 and dataset.label_names == ("no", "yes")
    assert "full_name" not in dataset.text_fields and "vendor_score" in dataset.extra.columns


HOSTILE_NAMES = [
    "Outcome (yes/no)",
    "sex: M/F",
    "#id note",
    "- race",
    "naïve ✓ 名前",
    'quo"ted',
    "it's",
    "  padded  ",
    "null",
    "true",
    "2024",
    "[bracket]",
    "{brace}",
    "a,b",
    "*star",
    "&anchor",
    "!tag",
    "%pct",
    "@at",
    "`tick`",
    "key: value # comment",
    "line\nbreak",
    "zero\u200bwidth",
    "nel\x85sep\u2028",
    "x" * 300,
]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_odd_column_names_survive_the_round_trip(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(2)
    n = 40
    frame = pd.DataFrame({name: rng.choice(["p", "q", "r"], n) for name in HOSTILE_NAMES})
    frame["sex: M/F"] = ["M", "F"] * (n // 2)
    frame["- race"] = rng.choice(["a", "b", "c"], n)
    frame["Outcome (yes/no)"] = ["yes", "no"] * (n // 2)
    data = write(frame, tmp_path / f"odd{suffix}", sep=";")
    text = _written(tmp_path, data).read_text(encoding="utf-8")
    config = load_config(tmp_path / "ethos.yaml")
    assert config.data.label == "Outcome (yes/no)"
    assert config.data.sensitive == ["sex: M/F", "- race"]
    expected = [c for c in HOSTILE_NAMES if c not in ("Outcome (yes/no)", "sex: M/F", "- race")]
    assert config.data.record_fields == expected
    assert "\u2028" not in text.split("data:")[0]  # comments carry escapes, not line breaks
    dataset = load_dataset(config.data)
    assert len(dataset) == n


def test_yes_no_values_are_quoted_so_yaml_does_not_read_booleans(tmp_path: Path) -> None:
    text = _written(tmp_path, write(applicants(), tmp_path / "loans.csv")).read_text()
    assert "label_names: ['no', 'yes']" in text
    assert yaml.safe_load(text)["data"]["label_names"] == ["no", "yes"]


def test_a_large_file_gets_a_sample_and_unconfirmed_label_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(init_config, "MAX_ROWS_READ", 30)
    data = write(applicants(90), tmp_path / "big.csv.gz")
    text = _written(tmp_path, data).read_text()
    assert "read its first 30 rows" in text
    assert re.search(r"^  sample: \d+$", text, re.M)
    assert re.search(r"^  # label_names:", text, re.M)  # rows never read may hold more classes


def test_a_wide_file_and_a_huge_cell(tmp_path: Path) -> None:
    frame = pd.DataFrame({f"c{i}": [i, i + 1] * 15 for i in range(1500)})
    frame["note"] = ["short"] * 29 + ["word " * 200_000]
    frame["outcome"] = ["a", "b"] * 15
    config = load_config(_written(tmp_path, write(frame, tmp_path / "wide.csv")))
    assert config.data.record_fields is not None and len(config.data.record_fields) == 1501
    assert config.model.max_length == 512


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"\n \n\n", "is empty"),
        ("header.csv", b"a;b;outcome\n", "has no rows"),
        ("garbage.csv", bytes(range(256)) * 8, "not valid utf-8: byte 0x80"),
        ("garbage.parquet", os.urandom(3000), "not a readable Parquet file"),
        ("garbage.jsonl", b"\x00{]\n", "line 1 is not valid JSON"),
        ("list.jsonl", b"[1, 2]\n", "JSON list, not an object"),
        ("broken.csv.gz", b"not gzip at all", "cannot read"),
        ("ragged.csv", b"name;age;outcome\nann;3;yes\nbob;4;no;extra\n", "single column"),
        ("rows.txt", b"a,b\n1,2\n", "cannot tell the format"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_written(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    data = tmp_path / name
    data.write_bytes(content)
    with pytest.raises(DataError, match=message):
        write_config_from_file(data, tmp_path / "ethos.yaml")
    assert not (tmp_path / "ethos.yaml").exists()


def test_a_semicolon_file_read_with_commas_says_which_separator_to_set(tmp_path: Path) -> None:
    data = write(applicants(), tmp_path / "loans.csv", sep=";")
    with pytest.raises(DataError) as err:
        write_config_from_file(data, tmp_path / "ethos.yaml", separator=",")
    assert "read as a single column" in str(err.value)
    assert "set data.separator: ';'" in str(err.value)


def test_explicit_separator_names_are_accepted_and_bad_ones_refused(tmp_path: Path) -> None:
    data = write(applicants(), tmp_path / "loans.tsv", sep="\t")
    config = load_config(_written(tmp_path, data, separator="tab"))
    assert config.data.separator == "\t"
    with pytest.raises(DataError, match="not one character"):
        write_config_from_file(data, tmp_path / "other.yaml", separator=";;")


def test_existing_config_and_the_data_file_itself_are_never_overwritten(tmp_path: Path) -> None:
    data = write(applicants(), tmp_path / "loans.csv")
    before = data.read_bytes()
    with pytest.raises(EthosError, match="is the data file itself"):
        write_config_from_file(data, data, force=True)
    assert data.read_bytes() == before
    target = tmp_path / "mine.yaml"
    target.write_text("precious: true\n")
    with pytest.raises(EthosError, match="already exists"):
        write_config_from_file(data, target)
    assert target.read_text() == "precious: true\n"
    with pytest.raises(DataError, match="does not exist"):
        write_config_from_file(tmp_path / "absent.csv", tmp_path / "x.yaml")


def test_a_file_without_label_or_protected_attribute_says_what_to_check(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": range(30), "y2": np.linspace(0, 1, 30)})
    proposal = write_config_from_file(write(frame, tmp_path / "t.csv"), tmp_path / "t.yaml")
    assert proposal.label is None
    checks = " ".join(proposal.checks)
    assert "CHECK data.label" in checks and "data.sensitive" in checks
    text = (tmp_path / "t.yaml").read_text()
    assert re.search(r"^  # label: ", text, re.M)
    with pytest.raises(DataError, match="no label column"):
        load_dataset(load_config(tmp_path / "t.yaml").data)


def test_source_is_relative_when_the_data_sits_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "project" / "data").mkdir(parents=True)
    data = write(applicants(), tmp_path / "project" / "data" / "loans.csv")
    text = _written(tmp_path / "project", data).read_text()
    assert "source: data/loans.csv" in text
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert f"source: {data.resolve()}" in _written(elsewhere, data).read_text()
