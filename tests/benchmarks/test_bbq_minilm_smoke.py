"""The BBQ MiniLM benchmark runs end to end in its --quick mode and writes every model's scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "bbq_minilm.py"
MODELS = {"minilm", "question_only", "always_unknown", "majority_option"}


@pytest.mark.slow  # about 20 s: two one-step trainings of MiniLM; `make test-slow` runs it
def test_bbq_minilm_quick_run_scores_model_and_baselines(tmp_path: Path) -> None:
    out = tmp_path / "bbq_minilm.json"
    env = os.environ | {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
    subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--out", str(out)],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    result = json.loads(out.read_text())
    assert result["benchmark"] == "bbq_minilm" and result["quick"] is True
    assert set(result["scores"]) == MODELS
    for name in ("minilm", "question_only"):
        run = result["runs"][name]
        assert run["steps"] == 1 and run["train_s"] > 0
        assert set(run["accuracy"]) == {"validation", "test"}
    assert result["settings"]["max_length"] > 0
    n_test = result["sizes"]["test_rows"]
    for scores in result["scores"].values():
        assert scores["n_rows"] == n_test
    unknown = result["scores"]["always_unknown"]["overall"]
    assert unknown["ambig"]["accuracy"] == 1.0 and unknown["disambig"]["accuracy"] == 0.0
    assert set(result["headline"]["overall"]["ambig"]) == MODELS
    assert len(result["machine"]["start"]["loadavg"]) == 3
    assert result["machine"]["end"]["gflops"] > 0
