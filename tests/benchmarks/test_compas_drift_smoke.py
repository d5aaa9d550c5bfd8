"""The COMPAS drift benchmark runs end to end on a tiny budget and writes a checked scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "compas_drift.py"


@pytest.mark.slow  # three governed runs (train 1 step, audit, gate, diff) on 2013/2014 COMPAS
def test_compas_drift_smoke_run_pairs_the_same_rows_for_every_model(tmp_path: Path) -> None:
    out = tmp_path / "compas_drift.json"
    env = os.environ | {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            "--workdir",
            str(tmp_path / "work"),
            "--max-steps",
            "1",
            "--n-resamples",
            "30",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=1500,
    )
    scenario = json.loads(out.read_text())["scenarios"]["clean"]
    assert set(scenario["models"]) == {"parent", "child-replay0", "child-replay50"}
    checks = scenario["checks"]
    assert checks["earlier_rescored_max_abs_prob_diff"] == 0.0
    n_later = int(checks["later_texts_equal_child_test_texts"].split("/")[1])
    assert checks["later_texts_equal_child_test_texts"] == f"{n_later}/{n_later}" and n_later > 100
    assert set(scenario["evaluation"]) == {"earlier", "later"}
