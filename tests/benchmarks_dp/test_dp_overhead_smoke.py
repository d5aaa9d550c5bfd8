"""The DP-overhead benchmark runs end to end in its --quick mode and writes its JSON."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "dp_overhead.py"
CONFIGURATIONS = {
    "full",
    "full_dp",
    "full_dp_embeddings",
    "full_dp_per_sample",
    "full_dp_ghost",
    "lora",
    "lora_dp",
    "lora_dp_per_sample",
}
RATIOS = {
    "full_dp_over_full",
    "lora_dp_over_lora",
    "full_dp_embeddings_over_full",
    "full_dp_per_sample_over_full",
    "full_dp_ghost_over_full",
    "lora_dp_per_sample_over_lora",
}


@pytest.mark.slow  # five models, a few small steps each; `make test-slow` runs it
def test_dp_overhead_quick_run_writes_positive_ratios(tmp_path: Path) -> None:
    out = tmp_path / "dp_overhead.json"
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
    assert result["benchmark"] == "dp_overhead"
    assert result["quick"] is True
    assert result["settings"]["torch_threads"] >= 1
    assert set(result["machine"]) >= {"loadavg_start", "loadavg_end", "cpus_visible", "torch"}
    configurations = result["configurations"]
    assert set(configurations) == CONFIGURATIONS
    timed = result["settings"]["timed_rounds"]
    for name, config in configurations.items():
        assert config["private"] == ("_dp" in name), name
        assert config["timed_steps"] == len(config["s_per_step"]) == timed > 0, name
        assert config["median_s_per_step"] > 0, name
        assert config["median_cpu_s_per_step"] > 0, name
        assert 0 < config["cpu_busy_fraction"] <= 1.5, name  # CPU time can exceed wall a bit
        assert set(config["median_s_by_phase"]) == {"forward", "backward", "optimizer"}, name
        assert config["profile"]["top_ops"], name
        memory = config["memory"]
        assert memory["peak_rss_training_mb"] >= memory["rss_after_build_mb"] > 50, name
        assert memory["training_peak_over_build_mb"] > 0, name
    assert configurations["lora"]["trainable_params"] < configurations["full"]["trainable_params"]
    for block in ("ratios", "ratios_paired_median", "ratios_cpu_time"):
        assert set(result[block]) == RATIOS, block
        for key, value in result[block].items():
            assert math.isfinite(value) and value > 0, (block, key)
    assert result["goal"]["ratio_at_most"] == 1.25
    assert result["goal"]["applies_to"] == "full_dp_over_full"
    assert isinstance(result["goal"]["meets"], bool)
