"""ServedModel against the run it serves: same texts, same probabilities, same decisions.

The run's ``predictions.parquet`` was written by training; serving must reproduce it from the
run directory alone, for argmax runs and for runs with per-group thresholds (keyed on the row id).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethos import DataError, EthosError, ModelError
from ethos.config import DataConfig
from ethos.data import Dataset, load_dataset
from ethos.models.group_thresholds import POOLED, GroupRule, ThresholdRule
from ethos.models.inference import record_fields as _record_fields
from ethos.rundir import RunDir
from ethos.serving.model import Prediction, ServedModel


def load_test_part(run: RunDir) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(run.config.data).part("test")


@pytest.fixture(scope="module")
def served(tiny_run: RunDir) -> ServedModel:
    return ServedModel.load(tiny_run)


@pytest.fixture(scope="module")
def served_thresholds(tiny_threshold_run: RunDir) -> ServedModel:
    return ServedModel.load(tiny_threshold_run.path)  # by path, as the CLI passes it


@pytest.fixture(scope="module")
def test_rows(tiny_run: RunDir) -> Dataset:
    return load_test_part(tiny_run)


def stored(run: RunDir, ids: np.ndarray) -> pd.DataFrame:
    return run.predictions().set_index("id").loc[[str(i) for i in ids]]


def test_records_become_the_training_texts_without_sensitive_columns(
    served: ServedModel, test_rows: Dataset
) -> None:
    records = test_rows.records.to_dict("records")
    assert {"race", "sex"} <= set(records[0])  # the records carry them ...
    texts = served.texts_from_records(records)
    assert texts == test_rows.texts
    assert not any("race:" in t or "sex:" in t or "African" in t for t in texts)  # ... not the text
    assert served.record_fields == tuple(test_rows.text_fields)
    assert set(served.sensitive) == {"race", "sex"}


def test_probabilities_equal_the_runs_stored_predictions(
    served: ServedModel, tiny_run: RunDir, test_rows: Dataset
) -> None:
    predictions = served.predict(test_rows.texts)
    expected = stored(tiny_run, test_rows.ids)
    got = np.array([[p.probabilities["0"], p.probabilities["1"]] for p in predictions])
    np.testing.assert_allclose(got, expected[["prob_0", "prob_1"]].to_numpy(), atol=1e-5)
    assert [p.label for p in predictions] == list(expected["predicted_label"])
    assert all(not p.thresholds_applied and p.threshold_group is None for p in predictions)
    assert all(p.label == served.label_names[p.label_index] for p in predictions)


def test_one_forward_gives_predictions_and_padding_free_embeddings(
    served: ServedModel, test_rows: Dataset
) -> None:
    texts = test_rows.texts[:6]
    predictions, embeddings = served.predict_and_embed(texts)
    assert predictions == served.predict(texts)
    assert embeddings.dtype == np.float32 and embeddings.shape == (6, served.embedding_dim)
    assert np.isfinite(embeddings).all()
    # Mean over real tokens only: a short text embeds the same alone and beside a long one.
    short = min(texts, key=len)
    alone = served.embed([short])[0]
    beside = served.embed([short, "word " * 200])[0]
    np.testing.assert_allclose(alone, beside, atol=1e-4)
    assert not np.allclose(embeddings[0], embeddings[1])


def test_group_thresholds_reproduce_the_stored_decisions(
    served_thresholds: ServedModel, tiny_threshold_run: RunDir
) -> None:
    rows = load_test_part(tiny_threshold_run)
    groups = [str(g) for g in rows.groups["race"]]
    keys = [str(i) for i in rows.ids]
    predictions = served_thresholds.predict(rows.texts, groups=groups, keys=keys)
    expected = stored(tiny_threshold_run, rows.ids)
    assert [p.label for p in predictions] == list(expected["predicted_label"])
    assert all(p.thresholds_applied for p in predictions)
    assert [p.threshold_group for p in predictions] == groups
    assert served_thresholds.thresholds_attribute == "race"
    # Without a group: argmax, and the prediction says so.
    plain = served_thresholds.predict(rows.texts[:4])
    assert all(not p.thresholds_applied for p in plain)
    assert [p.label_index for p in plain] == [
        int(np.argmax([p.probabilities[n] for n in served_thresholds.label_names])) for p in plain
    ]
    # The decision is a function of (score, group, key): same key, same decision.
    again = served_thresholds.predict(rows.texts, groups=groups, keys=keys)
    assert [p.label for p in again] == [p.label for p in predictions]


def test_group_from_records_and_missing_keys(served_thresholds: ServedModel) -> None:
    records = [{"race": "Caucasian"}, {"sex": "Male"}, {"race": None}]
    assert served_thresholds.groups_from_records(records) == ["Caucasian", None, None]
    with pytest.raises(DataError, match="give keys"):
        served_thresholds.predict(["age: 30"], groups=["Caucasian"])
    with pytest.raises(DataError, match="2 groups for 1 texts"):
        served_thresholds.predict(["age: 30"], groups=["Caucasian", "Hispanic"], keys=["a"])


def test_unknown_group_is_refused_without_a_pool_and_pooled_with_one(
    served_thresholds: ServedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    thresholds = served_thresholds.thresholds
    assert thresholds is not None and POOLED not in thresholds.groups
    with pytest.raises(DataError, match=r"'Martian'.*known groups"):
        served_thresholds.predict(["age: 30"], groups=["Martian"], keys=["k1"])
    with pytest.raises(DataError, match="'Martian'"):
        served_thresholds.check_groups(["Caucasian", None, "Martian"])
    always = GroupRule(rules=(ThresholdRule(">", float("-inf"), 1.0),))  # selects everyone
    pooled = replace(thresholds, groups={**thresholds.groups, POOLED: always})
    monkeypatch.setattr(served_thresholds.scorer, "thresholds", pooled)
    (prediction,) = served_thresholds.predict(["age: 30"], groups=["Martian"], keys=["k1"])
    assert prediction.thresholds_applied and prediction.threshold_group == POOLED
    assert prediction.label == served_thresholds.label_names[1]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"age": 30}], "lacks the field.*'juv_fel_count'"),
        ([["age", 30]], "record 0 is a list"),
    ],
)
def test_malformed_records_name_the_problem(
    served: ServedModel, records: list[object], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        served.texts_from_records(records)  # type: ignore[arg-type]


def test_a_nested_value_is_refused_by_field_and_null_is_unknown(
    served: ServedModel, test_rows: Dataset
) -> None:
    record = {field: test_rows.records[field].iloc[0] for field in served.record_fields}
    with pytest.raises(DataError, match="record 1: field 'priors_count' is a dict"):
        served.texts_from_records([record, {**record, "priors_count": {"n": 3}}])
    (text,) = served.texts_from_records([{**record, "priors_count": None}])
    assert "prior offences: unknown" in text


def test_empty_inputs_give_empty_outputs(served: ServedModel) -> None:
    assert served.predict([]) == []
    assert served.texts_from_records([]) == []
    predictions, embeddings = served.predict_and_embed([])
    assert predictions == [] and embeddings.shape == (0, served.embedding_dim)
    assert served.token_lengths([]) == []


def test_a_100_kb_text_is_truncated_not_refused(served: ServedModel, test_rows: Dataset) -> None:
    head = test_rows.texts[0]  # already longer than max_length (32) tokens
    long = head + " and more" * 11_200
    assert len(long) >= 100_000
    (p_long,) = served.predict([long])
    (p_head,) = served.predict([head])
    assert p_long.probabilities == pytest.approx(p_head.probabilities, abs=1e-6)
    assert served.token_lengths([long])[0] > 20_000 > served.max_length


def test_non_text_inputs_are_a_data_error(served: ServedModel) -> None:
    with pytest.raises(DataError, match="input 1 is a int"):
        served.predict(["fine", 3])  # type: ignore[list-item]


def test_explanation_attributes_the_predicted_label(
    served: ServedModel, test_rows: Dataset
) -> None:
    text = test_rows.texts[0]
    explanation = served.explain(text, steps=16)
    (prediction,) = served.predict([text])
    assert explanation.label == prediction.label == explanation.target
    assert explanation.probability == pytest.approx(prediction.probabilities[prediction.label])
    assert len(explanation.tokens) == len(explanation.attributions) <= served.max_length
    assert explanation.tokens[0] == "[CLS]" and explanation.attributions[0] == 0.0
    gap = explanation.probability - explanation.baseline_probability
    assert sum(explanation.attributions) - gap == pytest.approx(explanation.completeness_delta)
    # Within the 5 % tolerance, or escalated to the ceiling (4 x 16 steps) and saying so.
    assert explanation.relative_gap <= 0.05 or explanation.n_steps == 64
    body = explanation.to_json()
    assert {"label", "target", "tokens", "attributions", "completeness_delta"} <= set(body)
    with pytest.raises(DataError, match="unknown label 'maybe'"):
        served.explain(text, target="maybe")
    with pytest.raises(DataError, match="steps"):
        served.explain(text, steps=0)


def test_info_is_json_and_matches_the_manifest(served: ServedModel, tiny_run: RunDir) -> None:
    info = json.loads(json.dumps(served.info()))
    manifest = tiny_run.manifest
    assert info["model_id"] == manifest["run_id"] == served.model_id
    assert info["parameters"] == manifest["model"]["parameters"]
    assert info["labels"] == ["0", "1"] and info["max_length"] == 32
    assert info["decision_rule"] == "argmax" and info["thresholds"] is None
    assert info["quantization"] is None and info["precision"] == "float32"
    assert "input" in info and info["input"]["sensitive_in_text"] == []
    assert "the" in served.tokenizer_vocab
    assert "ServedModel" in repr(served)


def test_threshold_info_says_how_groups_are_decided(served_thresholds: ServedModel) -> None:
    info = served_thresholds.info()
    assert info["decision_rule"] == "group_thresholds"
    assert info["thresholds"]["attribute"] == "race"
    assert info["thresholds"]["constraint"] == "equalized_odds"
    assert info["thresholds"]["unknown_groups"] == "refused"


def test_record_fields_follow_include_sensitive_in_text() -> None:
    base = {"source": "x.csv", "label": "y", "record_fields": ["a", "race", "b"]}
    excluded = DataConfig.model_validate({**base, "sensitive": ["race", "sex"]})
    assert _record_fields(excluded, {}) == ["a", "b"]
    included = DataConfig.model_validate(
        {**base, "sensitive": ["race", "sex"], "include_sensitive_in_text": True}
    )
    assert _record_fields(included, {}) == ["a", "race", "b", "sex"]
    recorded = {"data": {"text_fields": ["b", "a"]}}
    assert _record_fields(excluded, recorded) == ["b", "a"]  # what training actually did
    text = DataConfig.model_validate({"source": "x.csv", "label": "y", "text_field": "note"})
    assert _record_fields(text, recorded) == ["note"]


def test_load_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown quantization"):
        ServedModel.load(tmp_path, quantize="int4")  # type: ignore[arg-type]
    with pytest.raises(EthosError, match="not an ethos run directory"):
        ServedModel.load(tmp_path)


def test_prediction_is_a_plain_value() -> None:
    p = Prediction("1", 1, {"0": 0.2, "1": 0.8}, thresholds_applied=False)
    assert p == Prediction("1", 1, {"0": 0.2, "1": 0.8}, False)
