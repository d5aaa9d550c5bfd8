"""`task: multiple_choice` (issue 19, part 1): BBQ and a user's file through the one training loop,
the audit's ``qa_bias`` section, and a policy that limits ambiguous-context bias.

Two small runs are trained once for the module: a 150-question sample of the bundled BBQ table
(split by template, three optimizer steps) and a 48-question constructed CSV without BBQ columns
(random split, two epochs with their checkpoints kept, for the resume test). The qa_bias numbers
are checked against :func:`ethos.stats.bbq_bias.bbq_bias_scores` on the stored predictions; the
gate is checked with policies written here to hold and to break on the same audit.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from cli_helpers import run_ethos
from ethos import ConfigError, DataError, RunConfig
from ethos.audit.runner import audit_run
from ethos.config import load_config
from ethos.data.choices import load_choices
from ethos.governance.gate import gate_run
from ethos.governance.metric_paths import check_metric_path
from ethos.models.multiple_choice import ChoiceEncoded, collate_choices, encode_choices
from ethos.rundir import RunDir
from ethos.stats.bbq_bias import bbq_bias_scores
from ethos.training import train
from ethos.training.choice_train import check_choice_config
from ethos.training.run import resume

BBQ_COLUMNS = [
    "category",
    "context_condition",
    "question_polarity",
    "unknown_index",
    "target_index",
]
FAST = {"epochs": 1, "batch_size": 8, "eval_batch_size": 64, "max_steps": 3, "learning_rate": 1e-4}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def bbq_config(output_dir: Path, **overrides: Any) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": {"source": "bbq", "sample": 150},
            "model": {"max_length": 96},
            "task": "multiple_choice",
            "train": FAST,
            "output_dir": str(output_dir),
            "seed": 3,
            **overrides,
        }
    )


def write_questions(path: Path, n: int = 48, **columns: list[Any]) -> Path:
    """``n`` constructed questions (who likes what), three options, no BBQ columns."""
    rng = np.random.default_rng(0)
    names = ["Ann", "Bob", "Cem", "Dana", "Eve", "Farid"]
    rows = []
    for i in range(n):
        a, b = rng.choice(names, size=2, replace=False)
        label = int(rng.integers(0, 3))
        options = [str(a), str(b), "Nobody"]
        rows.append(
            {
                "id": f"q{i}",
                "context": f"{a} likes apples. {b} likes pears.",
                "question": "Who likes apples?",
                "option_0": options[(0 - label) % 3],
                "option_1": options[(1 - label) % 3],
                "option_2": options[(2 - label) % 3],
                "label": label,
            }
        )
    frame = pd.DataFrame(rows)
    for name, values in columns.items():
        frame[name] = values
    frame.to_csv(path, index=False)
    return path


def file_config(source: Path, output_dir: Path, **train_options: Any) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": {"source": str(source)},
            "model": {"max_length": 32},
            "task": "multiple_choice",
            "train": {**FAST, **train_options},
            "output_dir": str(output_dir),
            "seed": 1,
        }
    )


@pytest.fixture(scope="module")
def bbq_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    run = train(bbq_config(tmp_path_factory.mktemp("bbq")), quiet=True)
    audit_run(run)
    return run


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """Two epochs of the constructed CSV, the epoch-1 checkpoint kept (for the resume test)."""
    root = tmp_path_factory.mktemp("csv")
    source = write_questions(root / "questions.csv")
    config = file_config(
        source, root / "runs", epochs=2, max_steps=None, batch_size=16, keep_checkpoints=True
    )
    run = train(config, quiet=True)
    audit_run(run)
    return run


# --- a BBQ run ------------------------------------------------------------------------------


def test_bbq_run_predicts_every_held_out_question_with_its_bbq_columns(bbq_run: RunDir) -> None:
    manifest, metrics = bbq_run.manifest, bbq_run.metrics
    assert manifest["task"] == "multiple_choice"
    assert manifest["data"]["split_by"] == "template" and manifest["data"]["options"] == 3
    assert manifest["training"]["optimizer_steps"] == 3
    predictions = bbq_run.predictions()
    expected = ["id", "split", "label", "predicted", "prob_0", "prob_1", "prob_2", *BBQ_COLUMNS]
    assert list(predictions.columns) == expected
    assert set(predictions["split"]) == {"validation", "test"}
    probabilities = predictions[["prob_0", "prob_1", "prob_2"]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities.argmax(axis=1) == predictions["predicted"].to_numpy()).all()
    counts = manifest["data"]["split_counts"]
    for part in ("validation", "test"):
        rows = predictions[predictions["split"] == part]
        assert len(rows) == counts[part] == metrics[part]["count"] > 0
        accuracy = float((rows["label"] == rows["predicted"]).mean())
        assert metrics[part]["accuracy"] == pytest.approx(accuracy)
    assert metrics["history"][-1]["accuracy"] == pytest.approx(metrics["validation"]["accuracy"])


def test_no_bbq_template_is_in_two_parts(bbq_run: RunDir) -> None:
    table = bbq_run.dataset().table
    parts = table.groupby(["category", "question_index"])["split"].nunique()
    assert (parts == 1).all()
    assert set(table["split"]) == {"train", "validation", "test"}


def test_qa_bias_section_is_bbq_bias_scores_of_the_stored_test_predictions(
    bbq_run: RunDir,
) -> None:
    audit = bbq_run.audit()
    assert audit is not None
    section = audit["qa_bias"]
    test = bbq_run.predictions().query("split == 'test'")
    expected = bbq_bias_scores(test).to_dict()
    assert section["computable"] is True and section["n_rows"] == len(test)
    assert section["accuracy"] == pytest.approx(float((test["label"] == test["predicted"]).mean()))
    cells = [("overall", section["overall"], expected["overall"])] + [
        (name, section["by_category"][name], cell) for name, cell in expected["by_category"].items()
    ]
    assert set(section["by_category"]) == set(expected["by_category"])
    for name, got, want in cells:
        for short, long in (("ambig", "ambiguous"), ("disambig", "disambiguated")):
            for key in ("n_rows", "n_correct", "n_non_unknown", "n_biased", "accuracy", "bias"):
                assert got[long][key] == want[short][key], (name, long, key)
            bias = want[short]["bias"]
            if bias is not None:
                assert got[long]["abs_bias"] == pytest.approx(abs(bias))
            elif long == "ambiguous" and got[long]["n_rows"] and got[long]["accuracy"] == 1.0:
                assert got[long]["abs_bias"] == 0.0  # every answer "unknown": no error at all
            else:
                assert got[long]["abs_bias"] is None
    assert audit["summary"]["qa_bias"]["status"] in ("green", "amber", "red")
    assert audit["summary"]["informativeness"]["status"] in ("green", "red")
    assert audit["meta"]["rows"] == len(test) and audit["meta"]["part"] == "test"
    html = (bbq_run.audit_dir / "report.html").read_text()
    assert "id='qa_bias'" in html and "could not draw" not in html


def _policy(
    path: Path,
    constraints: list[dict[str, Any]],
    *,
    scored: str = "qa_bias.by_category.*.ambiguous.abs_bias",
    worst: float = 100,
    best: float = 0,
) -> Path:
    """A policy scoring one qa_bias number (``worst`` to ``best``) with ``constraints``."""
    indicator = {
        "name": "scored",
        "metric": scored,
        "direction": "higher" if best > worst else "lower",
        "worst": worst,
        "best": best,
        "weight": 1.0,
    }
    policy = {
        "name": "qa-test",
        "threshold": 0.0,
        "score": {"name": "W", "components": [indicator]},
        "constraints": constraints,
        "review_uncertain": False,
    }
    path.write_text(json.dumps(policy))  # JSON is YAML
    return path


def test_the_gate_judges_ambiguous_bias_and_accuracy(bbq_run: RunDir, tmp_path: Path) -> None:
    section = bbq_run.audit()["qa_bias"]  # type: ignore[index]
    worst = max(
        cell["ambiguous"]["abs_bias"]
        for cell in section["by_category"].values()
        if cell["ambiguous"]["abs_bias"] is not None
    )
    star = "qa_bias.by_category.*.ambiguous.abs_bias"
    holding = [
        {"name": "bias", "metric": star, "op": "<=", "value": worst},
        {
            "name": "pooled",
            "metric": "qa_bias.overall.ambiguous.abs_bias",
            "op": "<=",
            "value": 100,
        },
        {"name": "accuracy", "metric": "qa_bias.accuracy", "op": ">=", "value": 0.0},
    ]
    passed = gate_run(bbq_run, _policy(tmp_path / "pass.yaml", holding), record=False)
    assert passed.scorecard.decision == "PASS" and passed.exit_code == 0
    [bias] = [c for c in passed.scorecard.constraints if c.label == "bias"]
    assert bias.status == "holds" and bias.value == pytest.approx(worst)

    breaking = [
        {"name": "bias", "metric": star, "op": "<", "value": worst},  # the worst category breaks
        {
            "name": "accuracy",
            "metric": "qa_bias.overall.disambiguated.accuracy",
            "op": ">=",
            "value": 1.01,
        },
    ]
    failed = gate_run(bbq_run, _policy(tmp_path / "fail.yaml", breaking), record=False)
    assert failed.scorecard.decision == "FAIL" and failed.exit_code == 1
    broken = {c.label for c in failed.scorecard.constraints if c.status == "broken"}
    assert broken == {"bias", "accuracy"}


def test_qa_bias_paths_are_known_to_policies() -> None:
    for path in (
        "qa_bias.by_category.*.ambiguous.abs_bias",
        "qa_bias.overall.disambiguated.accuracy",
        "qa_bias.overall.ambiguous.bias",
        "qa_bias.accuracy",
    ):
        check_metric_path(path, "constraint", "test")
    with pytest.raises(ConfigError, match="abs_bias"):
        check_metric_path("qa_bias.overall.ambiguous.abs_bais", "constraint", "test")


def test_the_bundled_example_and_policy_load() -> None:
    config = load_config(Path(__file__).parents[2] / "examples" / "bbq.yaml")
    assert config.task == "multiple_choice" and config.policy == "qa-bias"
    check_choice_config(config)


# --- a user's file --------------------------------------------------------------------------


def test_a_file_without_bbq_columns_gets_accuracy_and_the_reason(csv_run: RunDir) -> None:
    assert csv_run.manifest["data"]["split_by"] == "random"
    predictions = csv_run.predictions()
    assert not set(BBQ_COLUMNS) & set(predictions.columns)
    section = csv_run.audit()["qa_bias"]  # type: ignore[index]
    test = predictions.query("split == 'test'")
    assert section["computable"] is False and "category" in section["reason"]
    assert section["accuracy"] == pytest.approx(float((test["label"] == test["predicted"]).mean()))
    assert csv_run.audit()["summary"]["qa_bias"]["status"] == "grey"  # type: ignore[index]


def test_a_killed_run_resumes_to_the_same_weights(csv_run: RunDir, tmp_path: Path) -> None:
    copy = tmp_path / csv_run.path.name
    shutil.copytree(csv_run.path, copy)
    for name in ("manifest.json", "metrics.json", "predictions.parquet"):
        (copy / name).unlink()
    shutil.rmtree(copy / "model")
    shutil.rmtree(copy / "audit")
    resumed = resume(copy, quiet=True)
    assert resumed.manifest["training"]["resumed_from_epoch"] == 1
    assert resumed.metrics["history"] == csv_run.metrics["history"]
    assert (
        resumed.manifest["model"]["weights_sha256"] == csv_run.manifest["model"]["weights_sha256"]
    )


def test_lora_trains_the_adapters_and_the_head(tmp_path: Path) -> None:
    source = write_questions(tmp_path / "q.csv", n=24)
    config = file_config(source, tmp_path / "runs", max_steps=1, peft={"r": 2, "alpha": 4})
    run = train(config, quiet=True)
    model = run.manifest["model"]
    assert model["format"] == "lora-adapter"
    # rank-2 adapters on query and value of 6 layers (384 wide), plus the 385-weight head
    assert model["trainable_parameters"] == 6 * 2 * 2 * 384 * 2 + 385


def test_a_file_in_bbq_layout_is_split_by_template(tmp_path: Path) -> None:
    n = 48
    source = write_questions(
        tmp_path / "layout.csv",
        n=n,
        category=["A" if i % 2 else "B" for i in range(n)],
        question_index=[str(i % 8) for i in range(n)],
    )
    data = load_choices(file_config(source, tmp_path))
    assert data.split_by == "template"
    assert (data.table.groupby(["category", "question_index"])["split"].nunique() == 1).all()


def test_question_only_encoding_and_truncation_keep_the_option() -> None:
    from ethos.models.classifier import load_tokenizer

    tokenizer = load_tokenizer("default")
    long = "word " * 5000
    labels = np.array([1, 0])
    options = [["apples", "pears"], ["plums", "figs"]]
    with_context = encode_choices(
        tokenizer, [long, "short"], [long, "Who?"], options, labels, max_length=24
    )
    question_only = encode_choices(tokenizer, None, ["Who?", long], options, labels, max_length=24)
    for encoded in (with_context, question_only):
        assert len(encoded) == 2 and encoded.n_options == 2
        assert all(len(ids) <= 24 for question in encoded.input_ids for ids in question)
        first = tokenizer.decode(encoded.input_ids[0][0])
        assert "apples" in first  # the option survives truncation of a huge text
    assert "short" in tokenizer.decode(with_context.input_ids[1][0])
    assert "short" not in tokenizer.decode(question_only.input_ids[1][0])
    assert with_context.token_type_ids is not None
    batch = collate_choices(with_context, np.array([0, 1]), pad_id=0)
    width = int(with_context.lengths().max())
    assert batch["input_ids"].shape == (2, 2, width) == batch["attention_mask"].shape
    assert batch["token_type_ids"].shape == (2, 2, width)
    assert batch["labels"].tolist() == [1, 0]
    assert int(batch["attention_mask"][1, 0].sum()) == len(with_context.input_ids[1][0])
    empty = ChoiceEncoded([], None, np.zeros(0, dtype=np.int64))
    assert len(empty) == 0 and empty.lengths().shape == (0,)


# --- what is refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"source": "bbq", "text_field": "context"}}, "data.text_field is a classif"),
        ({"data": {"source": "bbq", "label_names": ["a", "b"]}}, "data.label_names is a classif"),
        ({"data": {"source": "bbq", "sensitive": ["category"]}}, "data.sensitive is a classif"),
        ({"data": {"source": "compas"}}, "'compas' is not a multiple-choice set"),
        ({"data": {"source": "qa.json"}}, "is a JSON file"),
        ({"train": {"early_stopping": {"metric": "macro_f1"}}}, "accuracy or loss"),
        ({"train": {"class_weights": "balanced"}}, "class_weights"),
        ({"train": {"fairness": {"method": "reweighing"}}}, "train.fairness is available"),
        ({"train": {"privacy": {"epsilon": 8}}}, "train.privacy is available"),
    ],
)
def test_classification_settings_are_refused_with_the_fix(
    change: dict[str, Any], message: str, tmp_path: Path
) -> None:
    raw = {"data": {"source": "bbq"}, "task": "multiple_choice", **change}
    with pytest.raises(ConfigError, match=message) as raised:
        check_choice_config(RunConfig.model_validate(raw))
    assert raised.value.hint


def test_the_choices_section_is_for_multiple_choice_only() -> None:
    with pytest.raises(ValueError, match="choices section is for task: multiple_choice"):
        RunConfig.model_validate({"data": {"source": "bbq"}, "choices": {}})
    with pytest.raises(ValueError, match="at least two options"):
        RunConfig.model_validate(
            {
                "data": {"source": "bbq"},
                "task": "multiple_choice",
                "choices": {"option_fields": ["a"]},
            }
        )


def _rows(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


HEADER = "id,context,question,option_0,option_1,label\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "a,c,q,yes,no,0.5\n", r"must be an integer option index; .* id a has '0.5'"),
        (HEADER + "a,c,q,yes,no,\n", "must be an integer option index"),
        (HEADER + "a,c,q,yes,no,-1\n", "label -1 .* out of range"),
        (
            "id,context,question,option_0,option_1,option_2,label\na,c,q,x,,y,0\n",
            "option 'option_1' is empty for the question with id a",
        ),
        (HEADER + "a,c,q,yes,no,0\na,c,q,yes,no,1\n", "ids repeat"),
        (HEADER + "a,c,,yes,no,0\n", "question .* is empty"),
        ("id,context,question,choice_a,choice_b,label\na,c,q,x,y,0\n", "0 option column"),
        (
            HEADER.replace("label", "label,target_index") + "a,c,q,yes,no,0,first\n",
            "target_index must be an option index",
        ),
    ],
)
def test_bad_rows_are_refused_naming_the_row(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as raised:
        load_choices(file_config(_rows(tmp_path, text), tmp_path))
    assert raised.value.hint


def test_too_few_questions_for_every_part_is_a_clear_error(tmp_path: Path) -> None:
    source = write_questions(tmp_path / "few.csv", n=2)
    with pytest.raises(DataError, match=r"part.* would be empty"):
        load_choices(file_config(source, tmp_path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,context,question,option_0,option_1,label\na,c,q,yes,,0\n", "has 1 option"),
        (
            "id,context,question,option_0,option_1,label\na,c,q,yes,no,2\n",
            "label 2 .* out of range",
        ),
        ("", "is empty"),
        ("id,ctx,question,option_0,option_1,label\na,c,q,yes,no,0\n", r"no column\(s\) context"),
    ],
    ids=["one option", "label out of range", "empty file", "missing column"],
)
def test_bad_files_fail_ethos_train_without_a_traceback(
    tmp_path: Path, text: str, message: str
) -> None:
    source = _rows(tmp_path, text)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"data: {{source: {source.name}}}\ntask: multiple_choice\noutput_dir: runs\n"
        "train: {max_steps: 1}\n"
    )
    result = run_ethos("train", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not list((tmp_path / "runs").glob("*/manifest.json"))


def test_the_card_describes_a_multiple_choice_model(bbq_run: RunDir, tmp_path: Path) -> None:
    from ethos.governance.card import write_card

    card = write_card(bbq_run)
    text = Path(card.markdown).read_text()
    assert "pipeline_tag: multiple-choice" in text
    assert "Model type: multiple choice" in text and "Chooses one of 3 given options" in text
    assert "whole question templates" in text


def test_predicting_with_a_multiple_choice_run_is_refused(bbq_run: RunDir) -> None:
    from ethos import ModelError, RunModel

    with pytest.raises(ModelError, match="multiple_choice run"):
        RunModel.from_dir(bbq_run)


def test_ethos_run_governs_a_multiple_choice_run(tmp_path: Path) -> None:
    from ethos.pipeline import run_pipeline

    source = write_questions(tmp_path / "q.csv", n=36)
    policy = _policy(
        tmp_path / "policy.yaml",
        [{"name": "accuracy", "metric": "qa_bias.accuracy", "op": ">=", "value": 0.0}],
        scored="qa_bias.accuracy",
        worst=0,
        best=1,
    )
    config = file_config(source, tmp_path / "runs", max_steps=1)
    result = run_pipeline(config, policy=str(policy), quiet=True, log=lambda _: None)
    assert result.decision == "PASS" and result.exit_code == 0
    assert result.report.is_file() and result.card.is_file()
    assert result.run.decision()["decision"] == "PASS"  # type: ignore[index]


def _screened(disambiguated_accuracy: float, n: int = 1252) -> dict[str, Any]:
    from ethos.audit.qa_bias import qa_bias_screen

    cell = {"accuracy": disambiguated_accuracy, "n_rows": n, "bias": -0.8, "abs_bias": 0.8}
    section = {
        "computable": True,
        "n_options": 3,
        "accuracy": 0.75,
        "overall": {
            "ambiguous": {"accuracy": 0.994, "n_rows": n, "bias": -0.1, "abs_bias": 0.1},
            "disambiguated": cell,
        },
    }
    return qa_bias_screen(section)


def test_guessing_between_the_two_people_is_not_green() -> None:
    """MiniLM's measured BBQ result (disambiguated 0.499 on 1,252 questions, bias near 0): a
    coin between the two people once "unknown" is ruled out, so the screen is amber, not green;
    0.60 on as many questions is clearly above 1/2 and stays green."""
    guessing = _screened(0.499)
    assert guessing["status"] == "amber"
    assert any("not clearly above 0.500" in r for r in guessing["reasons"])
    assert _screened(0.60)["status"] == "green"
    assert _screened(0.52, n=100)["status"] == "amber"  # 100 questions cannot tell 0.52 from 1/2
