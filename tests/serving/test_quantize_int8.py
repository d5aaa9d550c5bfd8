"""Int8 serving: Linear layers replaced, the float model kept for explanations, cost measured."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ethos import DataError
from ethos.rundir import RunDir
from ethos.serving.model import ServedModel
from ethos.serving.quantize import (
    QuantizationReport,
    count_float_linear,
    count_quantized_linear,
    measure_quantization,
    quantize_int8,
)


@pytest.fixture(scope="module")
def served_int8(tiny_run: RunDir) -> ServedModel:
    return ServedModel.load(tiny_run, quantize="int8")


def test_quantize_int8_replaces_every_linear_and_leaves_the_input_alone() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)
    ).eval()
    quantized = quantize_int8(model)
    assert count_float_linear(quantized) == 0 and count_quantized_linear(quantized) == 2
    assert count_float_linear(model) == 2  # the caller's float model is untouched
    x = torch.randn(8, 16)
    with torch.no_grad():
        np.testing.assert_allclose(quantized(x).numpy(), model(x).numpy(), atol=0.05)
        assert not torch.equal(quantized(x), model(x))  # it really is another computation


def test_int8_run_reports_a_small_accuracy_change_on_its_test_part(
    served_int8: ServedModel, tiny_run: RunDir
) -> None:
    report = served_int8.quantization
    assert report is not None and report.measured, report
    assert report.n == tiny_run.manifest["data"]["split_counts"]["test"]
    # The float decisions are the run's own: its stored test accuracy.
    assert report.accuracy_float == pytest.approx(tiny_run.metrics["test"]["accuracy"])
    assert report.accuracy_int8 is not None and report.accuracy_change is not None
    assert abs(report.accuracy_change) <= 0.1
    assert report.agreement is not None and report.agreement >= 0.9
    assert report.max_probability_change is not None and report.max_probability_change < 0.05
    assert report.seconds_float and report.seconds_float > 0
    assert report.seconds_int8 and report.seconds_int8 > 0
    assert report.linear_layers == count_float_linear(served_int8.float_model) > 30
    assert count_float_linear(served_int8.model) == 0


def test_int8_predictions_are_close_and_explanations_use_the_float_model(
    served_int8: ServedModel,
) -> None:
    texts = ["age: 25; prior offences: 4; charge degree: felony", "age: 61; prior offences: 0"]
    int8 = served_int8.probabilities(texts)
    predictions, embeddings = served_int8.predict_and_embed(texts)
    assert embeddings.shape == (2, served_int8.embedding_dim)
    np.testing.assert_allclose(
        [[p.probabilities[n] for n in served_int8.label_names] for p in predictions], int8
    )
    with torch.inference_mode():
        encoded = served_int8.tokenizer(texts, padding=True, return_tensors="pt")
        float_probs = torch.softmax(served_int8.float_model(**encoded).logits, -1).numpy()
    assert np.abs(int8 - float_probs).max() < 0.05
    explanation = served_int8.explain(texts[0], steps=8)
    assert explanation.probability == pytest.approx(float_probs[0].max(), abs=1e-5)
    assert "float32 copy" in explanation.model
    info = json.loads(json.dumps(served_int8.info()))
    assert info["precision"].startswith("int8")
    assert info["quantization"]["measured"] is True
    assert "float32 copy" in info["explanations"]["model"]
    assert info["parameters"] == served_int8.parameters > 20_000_000


def test_unavailable_data_is_reported_not_fatal(
    tiny_run: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise DataError("data/compas.csv does not exist")

    monkeypatch.setattr("ethos.data.load_dataset", unavailable)
    served = ServedModel.load(tiny_run, quantize="int8")
    report = served.quantization
    assert report is not None and not report.measured
    assert report.reason is not None and "compas.csv does not exist" in report.reason
    assert report.linear_layers > 30 and report.accuracy_int8 is None
    assert served.predict(["age: 30"])[0].label in served.label_names  # still serves
    assert "not measured" in repr(report)


def test_measure_quantization_arithmetic() -> None:
    labels = np.array([0, 1, 1, 0])
    proba_float = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    proba_int8 = np.array([[0.9, 0.1], [0.3, 0.7], [0.4, 0.6], [0.45, 0.55]])
    report = measure_quantization(
        lambda: (proba_float.argmax(1), proba_float),
        lambda: (proba_int8.argmax(1), proba_int8),
        labels,
        linear_layers=3,
    )
    assert report.accuracy_float == 0.75 and report.accuracy_int8 == 0.75
    assert report.accuracy_change == 0.0 and report.agreement == 0.5
    assert report.max_probability_change == pytest.approx(0.25)
    assert isinstance(report.to_json()["speedup"], float)
    empty = measure_quantization(
        lambda: (np.zeros(0), np.zeros((0, 2))),
        lambda: (np.zeros(0), np.zeros((0, 2))),
        np.zeros(0),
        linear_layers=3,
    )
    assert isinstance(empty, QuantizationReport) and not empty.measured
