"""The training-throughput benchmark runs end to end in its --quick mode and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "train_throughput.py"


@pytest.mark.slow  # ~95 s of two training loops; `make test-slow` runs it
def test_train_throughput_quick_run_writes_positive_numbers(tmp_path: Path) -> None:
    out = tmp_path / "train_throughput.json"
    env = os.environ | {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--out", str(out)],
        check=True,
        capture_output=True,
        env=env,
        timeout=600,
    )
    result = json.loads(out.read_text())
    assert result["benchmark"] == "train_throughput"
    assert result["matmul_peak"]["gflops"] > 0
    assert result["flop_formula"]["N_body_params"] > 0
    assert set(result["machine"]) >= {"loadavg_start", "loadavg_end", "cpus_visible"}
    compas = result["workloads"]["compas"]
    for side in ("ethos", "trainer"):
        (run,) = compas["runs"][side]
        assert run["timed_steps"] == compas["timed_steps"] > 0
        for key in ("examples_per_s", "nonpad_tokens_per_s", "gflops_nonpad", "timed_s"):
            assert run[key] > 0, (side, key)
        assert 0 <= run["padding_fraction"] < 1
        assert compas["best_examples_per_s"][side] > 0
    assert compas["ratio_ethos_over_trainer"] > 0
    assert compas["ethos_fraction_of_peak"] > 0
    assert set(compas["goals"]) >= {"meets_ratio", "meets_fraction"}
    assert all(v > 0 for k, v in compas["diagnostics"]["adamw_step_ms"].items() if k != "note")
    padding = compas["full_epoch_padding_whole_train_part"]
    assert 0 <= padding["ethos_padding_fraction"] < 1
    assert 0 <= padding["trainer_padding_fraction"] < 1
