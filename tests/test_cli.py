"""The `ethos` command as a user runs it: a real subprocess, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cli_helpers import run_ethos
from ethos.examples import example_names

REPO = Path(__file__).resolve().parents[1]


def ethos(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would; the demo may need up to 20 minutes on a loaded machine."""
    return run_ethos(*args, cwd=cwd, timeout=1200)


def test_help_lists_the_commands() -> None:
    result = ethos("--help")
    assert result.returncode == 0
    for command in ("init", "data", "train", "predict", "demo", "genome", "neuro", "ledger"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("name", "rows"),
    [("compas", 6172), ("adult", 48842), ("german", 1000), ("pubmedqa", 500)],
)
def test_data_describe_each_bundled_set(name: str, rows: int) -> None:
    result = ethos("data", "describe", name, "--no-tokens")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"<Dataset '{name}': {rows} rows" in out
    assert "labels:" in out and "split:" in out
    assert len(out.split("fingerprint: ")[1].split()[0]) == 64
    if name != "pubmedqa":
        assert "group " in out


def test_data_describe_counts_tokens_with_the_model_tokenizer() -> None:
    result = ethos("data", "describe", str(REPO / "examples" / "pubmedqa.yaml"))
    assert result.returncode == 0, result.stderr
    assert "are longer than model.max_length=256 tokens" in result.stdout


def test_init_writes_a_config_that_describes(tmp_path: Path) -> None:
    result = ethos("init", "--example", "german", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "ethos.yaml"
    assert written.read_text() == (REPO / "examples" / "german.yaml").read_text()
    described = ethos("data", "describe", "ethos.yaml", "--no-tokens", cwd=tmp_path)
    assert "<Dataset 'german': 1000 rows" in described.stdout


def test_init_qa_example_points_at_the_installed_data(tmp_path: Path) -> None:
    result = ethos("init", "--example", "squad_tiny", "qa.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    described = ethos("data", "describe", "qa.yaml", cwd=tmp_path)
    assert described.returncode == 0, described.stderr
    assert "60 questions, 12 paragraphs" in described.stdout


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("precious: true\n")
    result = ethos("init", str(target))
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert target.read_text() == "precious: true\n"


def test_every_example_is_offered_by_init() -> None:
    result = ethos("init", "--example", "nonesuch")
    assert result.returncode == 2
    for name in example_names():
        assert name in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("data", "describe", "nope"), "neither a config file nor a bundled data set"),
        (("data", "describe", "missing.yaml"), "config file missing.yaml does not exist"),
    ],
)
def test_user_errors_exit_2_without_traceback(args: tuple[str, ...], expected: str) -> None:
    result = ethos(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_prints_one_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  source: compas\n  lable: x\n")
    result = ethos("data", "describe", str(config))
    assert result.returncode == 2
    assert "data.lable (line 3): unknown key; did you mean 'label'?" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_demo_runs_to_the_end() -> None:
    """The full demo trains on all of COMPAS (minutes on 2 cores), so it runs with -m slow."""
    result = ethos("demo", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "<Dataset 'compas': 6172 rows" in result.stdout
    assert "fine-tuned" in result.stdout and "tfidf_logreg" in result.stdout
    assert "report: " in result.stdout and "report.html" in result.stdout
    # The parent FAILs its equalized-odds limit; the mitigated child is governed and diffed.
    assert "a mitigated child" in result.stdout
    assert "comparing with the parent run" in result.stdout
    assert "shared test rows" in result.stdout and "EOD race" in result.stdout
    assert "the mitigated child passes" in result.stdout or "still does not pass" in result.stdout


def own_csv(folder: Path, rows_per_class: int = 30) -> Path:
    """A user's file: bundled Adult rows with renamed columns (odd characters included), a yes/no
    outcome, an id, and semicolons between the fields, as a spreadsheet in many locales saves it."""
    import pandas as pd

    from ethos.datasets import adult

    table = adult()
    table = pd.concat(
        [
            table[table["income"] == ">50K"].head(rows_per_class),
            table[table["income"] == "<=50K"].head(rows_per_class),
        ]
    ).sample(frac=1, random_state=0)
    table = table[["age", "workclass", "education", "hours_per_week", "sex", "race", "income"]]
    table = table.rename(
        columns={
            "age": "Age (years)",
            "hours_per_week": "hours/week",
            "sex": "Sex",
            "race": "Race/ethnicity",
            "income": "target",
        }
    )
    table["target"] = table["target"].map({">50K": "yes", "<=50K": "no"})
    table.insert(0, "customer id", [f"c{i:03d}" for i in range(len(table))])
    path = folder / "clients.csv"
    table.to_csv(path, sep=";", index=False)
    return path


def test_init_from_own_csv_writes_a_config_that_trains_unchanged(tmp_path: Path) -> None:
    """The done-when of `ethos init --from`: the written config goes to `ethos train` as it is
    (60 rows, 6 optimizer steps at 64 tokens: about a minute on two loaded cores)."""
    import json

    import yaml

    own_csv(tmp_path)
    made = ethos("init", "--from", "clients.csv", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "label:  'target' (values 'no', 'yes')" in made.stdout
    assert "audit groups: 'Sex', 'Race/ethnicity'" in made.stdout
    written = (tmp_path / "ethos.yaml").read_text()
    assert "separator: ;" in written and "# max_steps: 20" in written
    trained = ethos("train", "ethos.yaml", "--quiet", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    run = Path(trained.stdout.split("run directory: ")[1].split()[0])
    run = run if run.is_absolute() else tmp_path / run
    data = json.loads((run / "manifest.json").read_text())["data"]
    assert data["rows"] == 60 and data["label_names"] == ["no", "yes"]
    assert data["text_fields"] == ["workclass", "education", "hours/week"]
    assert set(data["groups"]) == {"Sex", "Race/ethnicity"}
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["separator"] == ";" and saved["data"]["id_field"] == "customer id"


@pytest.mark.parametrize(
    ("args", "files", "expected"),
    [
        (("--from", "empty.csv"), {"empty.csv": b""}, "empty.csv is empty"),
        (("--from", "head.csv"), {"head.csv": b"a;b;outcome\n"}, "has no rows"),
        (("--from", "junk.csv"), {"junk.csv": bytes(range(256)) * 4}, "not valid utf-8"),
        (
            ("--from", "semi.csv", "--separator", ","),
            {"semi.csv": b"name;sex;outcome\nann;f;yes\nbob;m;no\n"},
            "set data.separator: ';'",
        ),
        (("--from", "absent.csv"), {}, "absent.csv does not exist"),
        (("--from", "x.csv", "--example", "german"), {"x.csv": b"a\n1\n"}, "not both"),
        (("--separator", ";"), {}, "--separator goes with --from"),
    ],
    ids=["empty", "header-only", "binary", "one-column", "missing", "both", "stray-separator"],
)
def test_init_from_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, args: tuple[str, ...], files: dict[str, bytes], expected: str
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    result = ethos("init", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "ethos.yaml").exists()
