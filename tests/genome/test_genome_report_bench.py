"""The HTML report is self-contained and escaped; the benchmark script runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ethos.genome import GenomeError
from ethos.genome.plots import plot_offtarget_counts
from ethos.genome.report import Section, render_html, write_html

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "offtarget_search.py"


def test_report_escapes_text_and_inlines_figures(tmp_path: Path) -> None:
    table = pd.DataFrame({"name": ["<script>alert(1)</script>"], "value": [0.123456]})
    html = render_html("a <b> title", [Section("s", "x & y", table, [plot_offtarget_counts([])])])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "a &lt;b&gt; title" in html and "x &amp; y" in html and "0.1235" in html
    assert html.count("data:image/png;base64,") == 1
    path = write_html(tmp_path / "r.html", "t", [Section("s")])
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert not list(tmp_path.glob("*.tmp"))


def test_report_into_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GenomeError, match=r"folder .* does not exist"):
        write_html(tmp_path / "nope" / "r.html", "t", [])


def test_benchmark_script_runs_on_a_tiny_genome(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--genome-mbp", "0.2", "--small-kbp", "3", "--skip-scale", "--out", str(out)]
    subprocess.run([sys.executable, str(BENCHMARK), *args], check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert result["large_genome"]["on_target_hits"] == 10
    assert result["speedup_small_genome"]["identical_hits"] is True
    assert result["genome_scale"] is None


@pytest.mark.slow
def test_benchmark_genome_scale_runs_on_a_tiny_genome(tmp_path: Path) -> None:
    """The sharded configuration end to end on 5 Mbp (starts Ray: about 15 s)."""
    pytest.importorskip("ray")
    out = tmp_path / "bench.json"
    args = ["--genome-mbp", "0.2", "--small-kbp", "3", "--scale-gbp", "0.005"]
    args += ["--scale-guides", "8", "--equality-mbp", "0.5", "--out", str(out)]
    subprocess.run([sys.executable, str(BENCHMARK), *args], check=True, capture_output=True)
    scale = json.loads(out.read_text())["genome_scale"]
    assert scale["equality"]["sharded_ray_equals_single_process"] is True
    assert scale["equality"]["sharded_in_process_equals_single_process"] is True
    assert scale["on_target_hits"] >= 8 and scale["memory"]["child_process_peak_rss_mb"]


def test_stored_benchmark_figures_are_for_the_issue_configuration_and_meet_the_goals() -> None:
    """The committed figures (benchmarks/results/offtarget_search.json) are what issue 9 asks
    for: 10 guides, a 100 Mbp genome, <= 4 mismatches, NGG; <= 60 s; >= 20x the reference."""
    stored = json.loads((BENCHMARK.parent / "results" / "offtarget_search.json").read_text())
    large, small = stored["large_genome"], stored["speedup_small_genome"]
    assert (stored["guides"], stored["max_mismatches"], stored["pam"]) == (10, 4, "NGG")
    assert large["genome_bp"] == 100_000_000 and large["on_target_hits"] == 10
    assert large["total_wall_s"] <= large["goal_total_wall_s"] == 60.0
    assert small["identical_hits"] is True
    assert small["speedup"] >= small["goal_speedup"] == 20.0


def test_stored_genome_scale_figures_are_1_gbp_100_guides_and_equal_the_single_process() -> None:
    """Issue 20: 1 Gbp x 100 guides, sharded on a local Ray with 2 workers, with the load."""
    stored = json.loads((BENCHMARK.parent / "results" / "offtarget_search.json").read_text())
    scale = stored["genome_scale"]
    assert scale["genome_bp"] >= 999_000_000 and scale["guides"] == 100
    assert scale["workers"] == 2 and scale["executor"] == "ray local"
    assert scale["on_target_hits"] >= 100
    assert scale["equality"]["sharded_ray_equals_single_process"] is True
    assert scale["equality"]["sharded_in_process_equals_single_process"] is True
    assert len(scale["load_before_search"]) == 3 and scale["memory"]["child_process_peak_rss_mb"]
