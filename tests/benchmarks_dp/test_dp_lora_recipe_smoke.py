"""The DP + LoRA recipe benchmark runs end to end in its --quick mode and writes its table."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "dp_lora_recipe.py"


@pytest.mark.slow  # three small runs (800 rows, one epoch); `make test-slow` runs it
def test_dp_lora_recipe_quick_run_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "dp_lora_recipe.json"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, str(BENCHMARK), "--quick", "--work-dir", str(tmp_path)]
    subprocess.run(
        [*command, "--output", str(out)],
        check=True,
        capture_output=True,
        env=env,
        timeout=1200,
    )
    result = json.loads(out.read_text())
    assert result["quick"] is True and result["missing_runs"] == []
    assert set(result["summary"]) == {"non_private", "dp_eps8", "dp_eps3"}
    for variant, epsilon in (("dp_eps8", 8.0), ("dp_eps3", 3.0)):
        run = result["runs"][variant]["3"]
        assert 0 < run["privacy"]["epsilon"] <= epsilon + 1e-6
        assert run["privacy"]["clipping"] == "book_keeping"
    assert result["runs"]["non_private"]["3"]["privacy"] is None
    for by_seed in result["runs"].values():
        for run in by_seed.values():
            assert math.isfinite(run["test_auroc"]) and 0 <= run["test_auroc"] <= 1
    assert result["goal"]["evaluated"] is True
    assert set(result["goal"]["gap_eps8_per_seed"]) == {"3"}
