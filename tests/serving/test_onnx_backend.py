"""Serving on ONNX Runtime: the same probabilities as PyTorch, int8 measured and limited, the
export cached in the run and refused when it is damaged or belongs to other weights.

The session runs (``tiny_run``, ``tiny_lora_run``, ``tiny_threshold_run``) must not change, and an
ONNX export writes into its run's ``exports/``: every test here works on a copy of a run.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from ethos import ModelError
from ethos.governance.card import card_documents, render_card
from ethos.models import onnx_backend
from ethos.models.onnx_backend import OnnxExportError, OnnxRunModel, default_threads, onnx_dir
from ethos.rundir import RunDir
from ethos.serving.model import ServedModel
from ethos.serving.quantize import VariantRefused, VariantReport
from ethos.serving.settings import ServeSettings

TEXTS = [
    "age: 25; prior offences: 4; charge degree: felony",
    "age: 61; prior offences: 0",
    "age: 19; prior offences: 11; charge degree: misdemeanour; juvenile offences: 2",
]


def copy_run(run: RunDir, where: Path) -> RunDir:
    """A copy of a session run (exports land in the copy, not in the shared run)."""
    return RunDir.open(shutil.copytree(run.path, where))


@pytest.fixture(scope="module")
def onnx_run(tiny_run: RunDir, tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    return copy_run(tiny_run, tmp_path_factory.mktemp("onnx") / "run")


@pytest.fixture(scope="module")
def served_onnx(onnx_run: RunDir) -> ServedModel:
    return ServedModel.load(onnx_run, backend="onnx")  # exports model.float32.onnx


@pytest.fixture(scope="module")
def served_onnx_int8(onnx_run: RunDir, served_onnx: ServedModel) -> ServedModel:
    return ServedModel.load(onnx_run, backend="onnx", quantize="int8", record=True)


def torch_probabilities(served: ServedModel, texts: list[str]) -> np.ndarray:
    return served.scorer.forward(texts, model=served.float_model)[0]


def test_onnx_float32_gives_torch_probabilities_and_embeddings(
    served_onnx: ServedModel, onnx_run: RunDir
) -> None:
    texts = TEXTS + onnx_run.dataset("test").texts[:16]
    onnx, embeddings = served_onnx.engine.forward(texts, embed=True)
    reference, reference_embeddings = served_onnx.float_engine.forward(texts, embed=True)
    assert onnx.dtype == np.float64 and onnx.shape == (len(texts), 2)
    np.testing.assert_allclose(onnx, reference, atol=1e-4)
    assert embeddings is not None and reference_embeddings is not None
    assert embeddings.dtype == np.float32 and embeddings.shape == (len(texts), 384)
    np.testing.assert_allclose(embeddings, reference_embeddings, atol=1e-4)
    assert not served_onnx.float_model.training  # the exporter left the float model in eval mode
    predictions = served_onnx.predict(texts[:3])
    assert [p.label_index for p in predictions] == list(reference[:3].argmax(1))
    report = served_onnx.quantization  # float32 ONNX is checked against torch too
    assert report is not None and report.measured and report.variant.name == "onnx-float32"
    assert report.agreement == 1.0 and report.accuracy_change == 0.0
    assert report.max_probability_change is not None and report.max_probability_change < 1e-4
    assert report.export_sha256 == served_onnx.model.file.sha256
    info = json.loads(json.dumps(served_onnx.info()))
    assert info["backend"] == "onnx" and info["precision"] == "float32"
    assert info["quantization"] is None and info["variant_check"]["accepted"] is True
    assert info["export"]["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert str(onnx_run.path) not in json.dumps(info)  # no file paths in /v1/model


def test_onnx_reads_text_pairs_through_token_type_ids(served_onnx: ServedModel) -> None:
    """The graph takes token_type_ids, so a pair scores as PyTorch scores it (encoded by the run
    model: same tokens, same truncation of the second text)."""
    scorer, engine = served_onnx.scorer, served_onnx.model
    pairs = ["second text here", "another one", "x " * 40]
    encoded = scorer.encode(TEXTS, pairs)
    assert encoded.token_type_ids is not None and any(1 in t for t in encoded.token_type_ids)
    onnx = engine.forward(TEXTS, pairs)[0]
    reference = scorer.forward(TEXTS, pairs, model=served_onnx.float_model)[0]
    np.testing.assert_allclose(onnx, reference, atol=1e-4)
    assert not np.allclose(onnx, engine.forward(TEXTS)[0], atol=1e-4)  # the pair mattered


def test_onnx_lora_merged_run_equals_torch(tiny_lora_run: RunDir, tmp_path: Path) -> None:
    served = ServedModel.load(copy_run(tiny_lora_run, tmp_path / "lora"), backend="onnx")
    assert served.merged_lora and served.info()["lora_merged"] is True
    np.testing.assert_allclose(
        served.probabilities(TEXTS), torch_probabilities(served, TEXTS), atol=1e-4
    )
    assert served.quantization is not None and served.quantization.agreement == 1.0


def test_onnx_thresholds_run_decides_as_torch(tiny_threshold_run: RunDir, tmp_path: Path) -> None:
    served = ServedModel.load(copy_run(tiny_threshold_run, tmp_path / "thr"), backend="onnx")
    reference = ServedModel.load(tiny_threshold_run)
    test = tiny_threshold_run.dataset("test")
    attribute = reference.thresholds_attribute
    assert attribute is not None
    texts = test.texts[:24]
    groups = [str(g) for g in test.groups[attribute].iloc[:24]]
    keys = [str(k) for k in test.ids[:24]]
    onnx = served.predict(texts, groups=groups, keys=keys)
    torch = reference.predict(texts, groups=groups, keys=keys)
    assert [p.label for p in onnx] == [p.label for p in torch]
    assert [p.threshold_group for p in onnx] == [p.threshold_group for p in torch]
    assert all(p.thresholds_applied for p in onnx)
    for a, b in zip(onnx, torch, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-4)


def test_onnx_int8_is_measured_recorded_and_explained_on_the_float_model(
    served_onnx_int8: ServedModel, onnx_run: RunDir
) -> None:
    report = served_onnx_int8.quantization
    assert report is not None and report.measured, report
    assert report.variant.name == "onnx-int8"
    assert report.n == onnx_run.manifest["data"]["split_counts"]["test"]
    assert report.accuracy_float == pytest.approx(onnx_run.metrics["test"]["accuracy"])
    assert report.accuracy_served is not None and report.agreement is not None
    assert report.agreement >= 0.9 and report.accepted is True and report.max_accuracy_drop == 1.0
    assert report.max_probability_change is not None and 0 < report.max_probability_change < 0.1
    assert report.linear_layers > 30  # every Linear of the encoder and the head
    assert report.seconds_served and report.speedup
    int8 = served_onnx_int8.probabilities(TEXTS)
    assert 0 < np.abs(int8 - torch_probabilities(served_onnx_int8, TEXTS)).max() < 0.1
    explanation = served_onnx_int8.explain(TEXTS[0], steps=8)
    assert "float32 copy" in explanation.model
    assert explanation.probability == pytest.approx(
        torch_probabilities(served_onnx_int8, TEXTS[:1]).max(), abs=1e-5
    )
    info = json.loads(json.dumps(served_onnx_int8.info()))
    assert info["precision"].startswith("int8") and info["quantization"]["variant"] == "onnx-int8"
    assert info["export"]["quantization"]["per_channel"] is True
    recorded = json.loads(onnx_run.serving_variants_path.read_text())
    entry = recorded["variants"]["onnx-int8"]
    assert entry["agreement"] == report.agreement and entry["accepted"] is True
    assert entry["export"]["sha256"] == report.export_sha256
    card = render_card(card_documents(onnx_run))
    section = card.split("## Serving variants", 1)[1].split("\n## ", 1)[0]
    assert "`onnx-int8`" in section and "served (limit 1.00 points)" in section


def test_second_load_reuses_the_cached_files(
    served_onnx_int8: ServedModel, onnx_run: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = onnx_dir(onnx_run)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert {"model.float32.onnx", "model.int8.onnx", "export.json"} <= set(before)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_backend, "export_onnx", refuse)
    monkeypatch.setattr(onnx_backend, "quantize_onnx", refuse)
    again = OnnxRunModel.load(served_onnx_int8.scorer, "int8", threads=1)
    assert again.file.sha256 == served_onnx_int8.model.file.sha256
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    np.testing.assert_allclose(
        again.forward(TEXTS)[0], served_onnx_int8.probabilities(TEXTS), atol=1e-6
    )


def test_a_measurement_passed_on_by_the_parent_process_is_reused_only_for_its_file(
    served_onnx_int8: ServedModel, onnx_run: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--workers N``: the CLI measured once; workers show that report instead of measuring."""
    report = served_onnx_int8.quantization
    assert report is not None
    settings = ServeSettings(
        run_dir=onnx_run.path,
        backend="onnx",
        quantize="int8",
        workers=2,
        variant_check=report.to_json(),
    )
    from ethos.serving import model as served_module

    def no_measuring(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured again")

    monkeypatch.setattr(served_module, "measure_variant", no_measuring)
    worker = served_module.load_served_model(settings)
    assert worker.quantization == report
    assert worker.model.threads == default_threads(2)
    other = {**report.to_json(), "export_sha256": "0" * 64}  # made for another file
    with pytest.raises(AssertionError, match="measured again"):
        served_module.load_served_model(settings.model_copy(update={"variant_check": other}))


def test_default_threads_share_the_cores_between_workers() -> None:
    cores = default_threads(1)
    assert cores >= 1
    assert default_threads(2) == max(1, cores // 2)
    assert default_threads(10_000) == 1


def test_int8_is_refused_when_it_loses_more_accuracy_than_allowed(
    served_onnx_int8: ServedModel, onnx_run: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variant whose decisions are worse than the limit allows never serves: forced here by a
    served engine that swaps the classes (the float reference is left alone)."""
    real = OnnxRunModel.forward

    def swapped(self: OnnxRunModel, *args: object, **kwargs: object) -> object:
        probabilities, pooled = real(self, *args, **kwargs)  # type: ignore[arg-type]
        return probabilities[:, ::-1].copy(), pooled

    accuracy = onnx_run.metrics["test"]["accuracy"]
    assert accuracy > 0.52, f"swapping the classes must cost accuracy (test accuracy {accuracy})"
    monkeypatch.setattr(OnnxRunModel, "forward", swapped)
    with pytest.raises(VariantRefused) as refused:
        ServedModel.load(onnx_run, backend="onnx", quantize="int8", record=True)
    message = str(refused.value)
    assert "onnx-int8" in message and "accuracy points worse" in message
    assert "the limit is 1 points" in message and "--max-accuracy-drop" in message
    entry = json.loads(onnx_run.serving_variants_path.read_text())["variants"]["onnx-int8"]
    assert entry["accepted"] is False and entry["accuracy_drop_points"] > 1.0
    card = render_card(card_documents(onnx_run))
    assert "refused (limit 1.00 points)" in card
    # The same swap within a limit that allows it: served, and the report says how bad it is.
    lenient = ServedModel.load(onnx_run, backend="onnx", quantize="int8", max_accuracy_drop=100)
    assert lenient.quantization is not None and lenient.quantization.accepted is True


def test_cli_refuses_the_variant_with_exit_2_before_listening(
    pass_run: RunDir,
    ledger: str,
    onnx_run: RunDir,
    served_onnx_int8: ServedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from ethos.cli import main

    run = copy_run(pass_run, tmp_path / "run")  # the same weights: the cached export fits
    shutil.copytree(onnx_dir(onnx_run), onnx_dir(run))

    monkeypatch.setattr(
        "ethos.serving.model.ServedModel._measure_variant",
        lambda self, layers, engine: VariantReport(
            measured=True,
            linear_layers=layers,
            engine=str(engine),
            backend="onnx",
            precision="int8",
            n=100,
            accuracy_float=0.70,
            accuracy_served=0.68,
            accuracy_change=-0.02,
            agreement=0.95,
            max_probability_change=0.2,
            seconds_float=1.0,
            seconds_served=0.4,
        ),
    )
    args = ["serve", str(run.path), "--backend", "onnx", "--quantize", "int8"]
    args += ["--ledger", ledger, "--db", str(tmp_path / "serving.db"), "--port", "1"]
    monkeypatch.setattr(sys, "argv", ["ethos", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capfd.readouterr().err
    assert "error: onnx-int8 decides the run's 100 test rows 2.00 accuracy points worse" in err
    assert "fix:" in err and "--max-accuracy-drop" in err


def test_unknown_backend_is_refused(tiny_run: RunDir) -> None:
    with pytest.raises(ModelError, match="unknown backend 'tensorrt'"):
        ServedModel.load(tiny_run, backend="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ServeSettings(run_dir=tiny_run.path, backend="tensorrt")  # type: ignore[arg-type]
    from cli_helpers import run_ethos

    done = run_ethos("serve", str(tiny_run.path), "--backend", "tensorrt")
    assert done.returncode == 2
    assert "--backend 'tensorrt' is not known" in done.stderr and "use torch or onnx" in done.stderr


def test_a_damaged_export_is_refused_not_used(
    served_onnx_int8: ServedModel, tmp_path: Path
) -> None:
    scorer = served_onnx_int8.scorer
    folder = onnx_dir(scorer.run)
    damaged_run = copy_run(scorer.run, tmp_path / "damaged")
    damaged = copy.copy(scorer)  # the same model and tokenizer, the copied run's cache
    damaged.run = damaged_run
    target = onnx_dir(damaged_run) / "model.int8.onnx"
    content = bytearray(target.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte in the weights
    target.write_bytes(bytes(content))
    with pytest.raises(OnnxExportError, match="damaged or replaced") as refused:
        OnnxRunModel.load(damaged, "int8")
    assert refused.value.hint is not None and str(onnx_dir(damaged_run)) in refused.value.hint
    # A file that matches its (edited) record but is no ONNX graph: ONNX Runtime's refusal is
    # named, not a traceback from inside onnxruntime.
    target.write_bytes(b"not an onnx graph")
    record = json.loads((onnx_dir(damaged_run) / "export.json").read_text())
    record["files"]["int8"]["sha256"] = onnx_backend._sha256(b"not an onnx graph")
    (onnx_dir(damaged_run) / "export.json").write_text(json.dumps(record))
    with pytest.raises(OnnxExportError, match="ONNX Runtime cannot load"):
        OnnxRunModel.load(damaged, "int8")
    assert (folder / "model.int8.onnx").stat().st_size > 1_000_000  # the original is untouched


def test_an_export_for_other_weights_is_refused(
    served_onnx: ServedModel, tiny_lora_run: RunDir, tmp_path: Path
) -> None:
    other = copy_run(tiny_lora_run, tmp_path / "lora")
    shutil.copytree(onnx_dir(served_onnx.run), onnx_dir(other))
    with pytest.raises(OnnxExportError, match="made for other weights") as refused:
        ServedModel.load(other, backend="onnx")
    assert refused.value.hint is not None and "delete" in refused.value.hint
