"""One run model: plain, LoRA and QA runs load through `RunModel` and reproduce their own
stored predictions; a changed data file is refused as a test set or a drift reference.

Before `ethos.models.inference.RunModel` there were three load-and-predict paths (`ethos
predict`, the audit, serving); the stored predictions.parquet of each run is the reference they
must all agree with, because the audit measures fairness on it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethos.data import resolve_data_config
from ethos.datasets import compas
from ethos.errors import EthosError
from ethos.models.inference import RunModel
from ethos.rundir import RunDir, RunDirError
from run_fixtures import tiny_compas_config, train_quietly

SRC = Path(__file__).resolve().parents[2] / "src" / "ethos"


def _stored(run: RunDir, part: str = "test") -> pd.DataFrame:
    stored = run.predictions()
    return stored[stored["split"] == part].set_index("id")


def _reproduce(run: RunDir, *, merge_lora: bool = False) -> tuple[RunModel, float, np.ndarray]:
    """The largest probability difference from the stored test predictions, and the
    decisions as stored (class indices) beside the run model's."""
    scorer = RunModel.from_dir(run, merge_lora=merge_lora)
    test = run.dataset("test")
    stored = _stored(run).loc[test.ids.astype(str)]
    probabilities = scorer.predict_proba(test.texts, test.text_pairs)
    columns = [f"prob_{name}" for name in scorer.label_names]
    gap = float(np.abs(probabilities - stored[columns].to_numpy(dtype=float)).max())
    names = list(scorer.label_names)
    return scorer, gap, stored["predicted_label"].astype(str).map(names.index).to_numpy()


def test_a_plain_run_reproduces_its_stored_predictions(tiny_run: RunDir) -> None:
    scorer, gap, stored = _reproduce(tiny_run)
    assert not scorer.adapter and scorer.thresholds is None
    assert gap < 1e-6
    test = tiny_run.dataset("test")
    decided = scorer.decide(scorer.predict_proba(test.texts)).indices
    assert (decided == stored).all()
    # One padded forward pass (serving's batch) gives the same probabilities.
    one_batch, pooled = scorer.forward(test.texts[:8], embed=True)
    assert np.abs(one_batch - scorer.predict_proba(test.texts[:8])).max() < 1e-5
    assert pooled is not None and pooled.shape == (8, scorer.embedding_dim)
    assert "RunModel" in repr(scorer) and "argmax" in repr(scorer)


def test_a_threshold_run_reproduces_its_stored_decisions(tiny_threshold_run: RunDir) -> None:
    scorer, gap, stored = _reproduce(tiny_threshold_run)
    assert gap < 1e-6 and scorer.thresholds_attribute == "race"
    test = tiny_threshold_run.dataset("test")
    groups = [str(g) for g in test.groups["race"]]
    decisions = scorer.decide(scorer.predict_proba(test.texts), groups, [str(i) for i in test.ids])
    assert (decisions.indices == stored).all()
    assert all(rule is not None for rule in decisions.rules)


@pytest.mark.parametrize("merge_lora", [False, True], ids=["adapter", "merged"])
def test_a_lora_run_reproduces_its_stored_predictions(
    tiny_lora_run: RunDir, merge_lora: bool
) -> None:
    scorer, gap, stored = _reproduce(tiny_lora_run, merge_lora=merge_lora)
    assert scorer.adapter and scorer.merged_lora == merge_lora
    assert gap < (1e-5 if merge_lora else 1e-6)  # merging reorders float sums
    test = tiny_lora_run.dataset("test")
    assert (scorer.decide(scorer.predict_proba(test.texts)).indices == stored).all()


def test_a_qa_run_reproduces_its_stored_answers(tiny_qa_run: RunDir) -> None:
    scorer = RunModel.from_dir(tiny_qa_run)
    assert scorer.task == "extractive_qa" and scorer.data is None
    test = tiny_qa_run.dataset("test")
    stored = _stored(tiny_qa_run).loc[list(test.ids)]
    assert scorer.answer(test) == list(stored["predicted_answer"])
    with pytest.raises(EthosError, match="reads SQuAD files"):
        scorer.texts_from_records([{"question": "why?"}])


def test_records_become_the_texts_training_saw(tiny_run: RunDir) -> None:
    scorer = RunModel.from_dir(tiny_run)
    test = tiny_run.dataset("test")
    assert scorer.texts_from_frame(test.records)[0] == list(test.texts)
    records = test.records.to_dict(orient="records")
    assert scorer.texts_from_records(records)[0] == list(test.texts)
    with pytest.raises(EthosError, match="lacks the field"):
        scorer.texts_from_records([{"age": 30}])


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, Path]:
    """A tiny run trained from a CSV file the test can change afterwards."""
    tmp = tmp_path_factory.mktemp("csv_run")
    source = tmp / "compas.csv"
    compas().head(300).to_csv(source, index=False)
    config = tiny_compas_config(tmp / "runs")
    resolved = resolve_data_config(config.data)  # the bundled set's columns, spelled out
    data = resolved.model_copy(update={"source": str(source), "sample": None})
    return train_quietly(config.model_copy(update={"data": data})), source


def test_a_changed_data_file_is_never_the_test_set_or_drift_reference(
    csv_run: tuple[RunDir, Path], tmp_path: Path
) -> None:
    from ethos.serving.model import ServedModel
    from ethos.serving.observe import DriftFeed

    run, source = csv_run
    served = ServedModel.load(run)
    assert len(run.dataset("test")) > 0  # unchanged: loads
    original = source.read_text()
    try:
        table = pd.read_csv(source)
        table.loc[0, "priors_count"] = int(table.loc[0, "priors_count"]) + 1  # one cell
        table.to_csv(source, index=False)
        with pytest.raises(RunDirError, match="changed since training"):
            run.dataset("test")
        with pytest.raises(EthosError, match=r"monitor's reference.*changed since training"):
            DriftFeed.for_run(run, served, None)
    finally:
        source.write_text(original)
    DriftFeed.for_run(run, served, None)  # restored: accepted again


def test_no_other_load_or_predict_path_outside_models() -> None:
    """Loading weights and turning logits into probabilities happen in ethos.models only
    (the neuro decoders' own small networks excepted)."""
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("models/", "neuro/")):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"from_pretrained\(|def predict_proba\(|\.logits\b.*softmax", code):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []


def test_copies_of_a_run_stay_independent(tiny_run: RunDir, tmp_path: Path) -> None:
    """A copied run directory loads as the same model (same decisions) from its new place."""
    copy = RunDir.open(shutil.copytree(tiny_run.path, tmp_path / "copy"))
    texts = copy.dataset("test").texts[:5]
    original = RunModel.from_dir(tiny_run).predict_proba(texts)
    assert np.array_equal(RunModel.from_dir(copy).predict_proba(texts), original)
