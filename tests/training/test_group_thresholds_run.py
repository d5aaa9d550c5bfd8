"""A tiny COMPAS run with per-group thresholds: the run, ethos predict and the audit agree.

The fitted rule decides each row from (score, group, row id), so the run's stored decisions,
``ethos predict`` on the same rows and the audit's ``y_pred`` must all be the same decisions.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethos import DataError, RunConfig
from ethos.datasets import compas
from ethos.models.group_thresholds import DECISION_RULE, THRESHOLDS_FILE, GroupThresholds
from ethos.models.predict_file import predict_file
from ethos.rundir import RunDir
from ethos.training import train


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    config = RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": 400, "min_group_size": 1},
            "model": {"max_length": 32},
            "train": {
                "epochs": 1,
                "batch_size": 16,
                "max_steps": 6,
                "fairness": {"method": "thresholds", "constraint": "equalized_odds"},
            },
            "output_dir": str(tmp_path_factory.mktemp("gthr_runs")),
            "seed": 5,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(config, quiet=True)


def _decided(predictions: pd.DataFrame) -> np.ndarray:
    return (predictions["predicted_label"].astype(str) == "1").to_numpy().astype(int)


def test_run_stores_thresholds_and_decides_with_them(run: RunDir) -> None:
    thresholds = GroupThresholds.load(run.model_dir / THRESHOLDS_FILE)
    assert thresholds.attribute == "race"  # default: the first of data.sensitive
    assert thresholds.constraint == "equalized_odds"
    predictions = run.predictions()
    expected = thresholds.decide(
        predictions["prob_1"].to_numpy(), predictions["group_race"], predictions["id"]
    )
    assert np.array_equal(_decided(predictions), expected)


def test_predict_uses_the_thresholds_and_says_so(run: RunDir, tmp_path: Path) -> None:
    predictions = run.predictions().set_index("id")
    rows = compas()
    rows = rows[rows["id"].astype(str).isin(predictions.index)].head(40)
    source = tmp_path / "held_out.csv"
    rows.to_csv(source, index=False)
    scored = pd.read_csv(predict_file(run, source))
    assert set(scored["decision_rule"]) == {DECISION_RULE}
    stored = predictions.loc[rows["id"].astype(str)]
    assert np.allclose(scored["prob_1"], stored["prob_1"], atol=1e-4)  # the model's scores stay
    assert np.array_equal(_decided(scored), _decided(stored))  # same row, same decision

    rows.drop(columns=["race"]).to_csv(source, index=False)
    with pytest.raises(DataError, match=r"lacks the column 'race'.*group"):
        predict_file(run, source)


def test_audit_measures_the_stored_decisions(run: RunDir) -> None:
    from ethos.audit.run_context import context_from_run

    context = context_from_run(run)
    ids = context.extras["ids"]
    stored = run.predictions().set_index("id").loc[ids]
    assert np.array_equal(context.y_pred, _decided(stored))
    if not (run.model_dir / THRESHOLDS_FILE).exists():  # a plain run: decisions are the argmax
        assert np.array_equal(context.y_pred, stored[["prob_0", "prob_1"]].to_numpy().argmax(1))
