from __future__ import annotations

from pathlib import Path

import pytest

from ethos import ConfigError, load_config
from ethos.examples import example_names

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write(tmp_path: Path, text: str | bytes, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", example_names())
def test_every_example_config_validates(name: str) -> None:
    config = load_config(EXAMPLES / f"{name}.yaml")
    assert config.data.source
    tasks = {"squad_tiny": "extractive_qa", "bbq": "multiple_choice"}
    assert config.task == tasks.get(name, "classification")


def test_unknown_key_names_key_file_line_and_expected(tmp_path: Path) -> None:
    path = write(tmp_path, "data:\n  source: compas\n  labl: two_year_recid\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "data.labl (line 3): unknown key" in message
    assert "did you mean 'label'?" in message
    assert "expected one of:" in message and "record_fields" in message


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, "data:\n  source: compas\ntrain:\n  batch_size: many\n")
    with pytest.raises(ConfigError, match=r"train\.batch_size \(line 4\): .*integer.*'many'"):
        load_config(path)


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(tmp_path, "data:\n  label: y\n")
    with pytest.raises(ConfigError, match=r"data\.source \(line 1\): required key is missing"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"data: required key is missing"):
        load_config(write(tmp_path, "model:\n  name: default\n", "nodata.yaml"))


def test_value_out_of_range_and_cross_field_rules(tmp_path: Path) -> None:
    bad_split = "data:\n  source: compas\n  split: {validation: 0.5, test: 0.45}\n"
    with pytest.raises(ConfigError, match="must leave at least 10%"):
        load_config(write(tmp_path, bad_split))
    both = "data:\n  source: x.csv\n  text_field: t\n  record_fields: [a]\n"
    with pytest.raises(ConfigError, match=r"either text_field .* or record_fields"):
        load_config(write(tmp_path, both, "both.yaml"))
    with pytest.raises(ConfigError, match=r"task .*'regression'"):
        load_config(write(tmp_path, "data: {source: compas}\ntask: regression\n", "t.yaml"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("- a\n- b\n", "must be a mapping of sections"),
        ("data: [unclosed\n", r"not valid YAML at line \d+"),
        ("data:\n\tsource: x\n", "not valid YAML"),
        (b"data:\n  source: caf\xe9\n", "not UTF-8"),
    ],
)
def test_malformed_files_fail_clearly(tmp_path: Path, text: str | bytes, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, text))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="is not a file"):
        load_config(tmp_path)


def test_hostile_yaml_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "data: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_huge_config_value_is_reported_shortened(tmp_path: Path) -> None:
    path = write(tmp_path, f"data:\n  source: compas\nseed: {'9' * 5000}x\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "seed (line 3)" in str(err.value)
    assert len(str(err.value)) < 1000


def test_relative_paths_resolve_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub", "data:\n  source: ../rows.csv\npolicy: p.yaml\n")
    config = load_config(path)
    assert config.data.source == str((tmp_path / "rows.csv").resolve())
    assert config.policy == str((tmp_path / "sub" / "p.yaml").resolve())
    assert load_config(write(tmp_path, "data: {source: compas}\n")).data.source == "compas"
    bundled = load_config(write(tmp_path, "data: {source: compas}\npolicy: medical\n"))
    assert bundled.policy == "medical"  # a bundled policy name is not a path
