"""`ethos sweep` end to end: a real two-point sweep, its ledger entries, and its page in Chromium.

The real sweep trains two tiny COMPAS runs (a few optimizer steps each) through the CLI, once for
the module. The runner's own logic (failures, ε from the manifest, the fronts) is tested with a
stand-in pipeline that writes small run directories, so those tests train nothing.

The browser test needs the Debian `chromium` package and the `playwright` Python package, which
drives that system browser (nothing is downloaded); without them it is skipped locally and fails
under CI, as the audit report's browser test does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from browser import FIGURE_BOXES, chromium_path, open_in_chromium
from cli_helpers import run_ethos
from ethos import pipeline
from ethos.config import RunConfig
from ethos.errors import EthosError
from ethos.governance.ledger import Ledger
from ethos.rundir import RunDir
from ethos.sweep import runner

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TINY = {
    "data": {"source": "compas", "sample": 300, "min_group_size": 1},
    "model": {"max_length": 32},
    "train": {"epochs": 1, "batch_size": 16, "max_steps": 4},
    "policy": "criminal-justice",
}


# ---------------------------------------------------------------------------------------------
# The runner with a stand-in pipeline (nothing trains).


def _fake_run(folder: Path, *, accuracy: float, gaps: dict[str, float], epsilon: Any) -> RunDir:
    folder.mkdir(parents=True)
    training: dict[str, Any] = {"optimizer_steps": 4}
    if epsilon is not None:
        training["privacy"] = {"epsilon": epsilon}
    manifest = {
        "run_id": folder.name,
        "config_hash": "c" * 64,
        "data": {"fingerprint": "f" * 64},
        "model": {"weights_sha256": "w" * 64},
        "training": training,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "metrics.json").write_text(json.dumps({"test": {"accuracy": accuracy}}))
    fairness = {
        attribute: {"disparities": {"equalized_odds_difference": {"value": gap}}}
        for attribute, gap in gaps.items()
    }
    (folder / "audit").mkdir()
    (folder / "audit" / "audit.json").write_text(json.dumps({"fairness": fairness}))
    ledger = {"seq": 7, "entry_hash": "e" * 64}
    (folder / "decision.json").write_text(json.dumps({"ledger": ledger}))
    return RunDir.open(folder)


def test_measured_points_give_both_fronts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # seed -> (accuracy, race gap, planned epsilon, W, decision); worked out by hand:
    # accuracy/gap front: #1 (most accurate) and #2 (fairest); #3 loses to #2 on both.
    # accuracy/epsilon front: all three (#1 most accurate, #2 between, #3 most private).
    table = {
        1: (0.70, 0.20, None, 0.55, "REVIEW"),
        2: (0.65, 0.10, 4.0, 0.62, "PASS"),
        3: (0.60, 0.15, 1.0, 0.40, "FAIL"),
    }
    calls: list[RunConfig] = []

    def stand_in(config: RunConfig, **kwargs: Any) -> SimpleNamespace:
        calls.append(config)
        accuracy, gap, epsilon, welfare, decision = table[config.seed]
        run = _fake_run(
            Path(config.output_dir) / f"run-{config.seed}",
            accuracy=accuracy,
            gaps={"race": gap, "sex": 0.9},  # the policy constrains race: sex is not read
            epsilon=epsilon,
        )
        return SimpleNamespace(run=run, welfare=welfare, decision=decision, broken=[])

    monkeypatch.setattr(pipeline, "run_pipeline", stand_in)
    lines: list[str] = []
    result = runner.sweep(
        RunConfig.model_validate(TINY),
        ["seed=[1,2,3]"],
        ledger_url=str(tmp_path / "ledger.db"),
        out=tmp_path / "sweep",
        log=lines.append,
    )
    assert [c.output_dir for c in calls] == [tmp_path / "sweep" / "runs"] * 3
    assert result.exit_code == 0
    document = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert document["fronts"] == {
        "accuracy_vs_fairness_gap": [0, 1],
        "accuracy_vs_epsilon": [0, 1, 2],
    }
    first, second, _ = document["points"]
    assert first["epsilon"] is None and first["private"] is False  # no planned ε: non-private
    assert second["epsilon"] == 4.0 and second["private"] is True
    assert second["fairness_gap"] == 0.10
    assert (
        second["fairness_gap_metric"]
        == "audit.fairness.race.disparities.equalized_odds_difference.value"
    )
    assert second["run_dir"] == "runs/run-2" and second["ledger_entry"] == "#7 " + "e" * 64
    assert [p["decision"] for p in document["points"]] == ["REVIEW", "PASS", "FAIL"]
    assert result.points[0].epsilon == math.inf
    assert any(line.startswith("[2/3] seed=2: accuracy 0.650") for line in lines)
    page = (tmp_path / "sweep" / "index.html").read_text()
    assert page.count("<svg") == 3 and "Pareto front (2 runs)" in page
    assert ">∞</text>" in page and ">4</text>" in page  # ε axis: finite ticks and the ∞ column


def test_failed_points_are_recorded_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[RunConfig] = []

    def stand_in(config: RunConfig, **kwargs: Any) -> None:
        calls.append(config)
        if len(calls) == 1:
            (Path(config.output_dir) / "half-run").mkdir(parents=True)
            raise RuntimeError("out of memory")
        raise EthosError("no such column", hint="check data.label")

    monkeypatch.setattr(pipeline, "run_pipeline", stand_in)
    hostile = "<img src=x onerror=alert(1)>"
    result = runner.sweep(
        RunConfig.model_validate(TINY),
        [f"data.label=['{hostile}', two_year_recid]"],
        ledger_url=str(tmp_path / "ledger.db"),
        out=tmp_path / "sweep",
        log=lambda _: None,
    )
    assert len(calls) == 2 and result.exit_code == 1
    first, second = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["points"]
    assert first["status"] == second["status"] == "failed"
    assert first["error"].startswith("RuntimeError: out of memory")
    # What the failed run left is named, moved aside: runs/ holds only finished runs.
    assert first["run_dir"] == "runs/.failed/half-run"
    assert (tmp_path / "sweep" / "runs" / ".failed" / "half-run").is_dir()
    assert not (tmp_path / "sweep" / "runs" / "half-run").exists()
    assert second["error"] == "no such column"
    page = (tmp_path / "sweep" / "index.html").read_text()
    assert hostile not in page and "&lt;img src=x" in page
    assert "no finished run to draw yet" in page


def test_policy_ledger_and_folder_are_checked_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("nothing may train")

    monkeypatch.setattr(pipeline, "run_pipeline", never)
    no_policy = RunConfig.model_validate({**TINY, "policy": None})
    with pytest.raises(EthosError, match="no policy"):
        runner.sweep(no_policy, ["seed=[1]"], out=tmp_path / "a", ledger_url=str(tmp_path / "l"))
    with pytest.raises(EthosError, match="neither a file nor a bundled policy"):
        runner.sweep(no_policy, ["seed=[1]"], policy="nonesuch", out=tmp_path / "b")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("mine")
    with pytest.raises(EthosError, match="not empty"):
        runner.sweep(
            RunConfig.model_validate(TINY),
            ["seed=[1]"],
            out=tmp_path / "c",
            ledger_url=str(tmp_path / "ledger.db"),
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["keep.txt"]


def test_other_processes_of_a_launch_train_but_write_no_sweep_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[int] = []
    monkeypatch.setattr(
        pipeline, "run_pipeline", lambda config, **_: trained.append(config.seed) or 1 / 0
    )
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    config = RunConfig.model_validate(TINY)
    with pytest.raises(EthosError, match="needs --out"):
        runner.sweep(config, ["seed=[1,2]"], ledger_url=str(tmp_path / "ledger.db"))
    out = tmp_path / "sweep"
    (out / "runs").mkdir(parents=True)  # the main process got there first
    result = runner.sweep(config, ["seed=[1,2]"], out=out, ledger_url=str(tmp_path / "l.db"))
    assert trained == [1, 2] and len(result.failed) == 2
    assert sorted(p.name for p in out.iterdir()) == ["runs"]


# ---------------------------------------------------------------------------------------------
# A real sweep of two tiny points through the CLI.


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("sweep-real")
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "output_dir": str(tmp / "elsewhere")}))
    out, ledger = tmp / "sweep", tmp / "ledger.db"
    done = run_ethos(
        "sweep", str(config),
        "--grid", "learning_rate=[1e-4,3e-4]", "--grid", "seed=[1]",
        "--out", str(out), "--ledger", str(ledger), "--quiet",
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((out / "sweep.json").read_text())
    return {"out": out, "ledger": ledger, "stdout": done.stdout, "document": document}


def test_each_point_is_a_governed_run_with_its_grid_values(swept: dict[str, Any]) -> None:
    document, out = swept["document"], swept["out"]
    assert [a["key"] for a in document["grid"]] == ["train.learning_rate", "seed"]
    points = document["points"]
    assert [p["label"] for p in points] == [
        "learning_rate=0.0001, seed=1",
        "learning_rate=0.0003, seed=1",
    ]
    for point in points:
        assert point["status"] == "done", point
        run = RunDir.open(out / point["run_dir"])
        assert run.config.train.learning_rate == point["values"]["train.learning_rate"]
        assert run.config.seed == 1 and run.config.train.max_steps == 4
        decision = json.loads((run.path / "decision.json").read_text())
        assert point["decision"] == decision["decision"] in ("PASS", "REVIEW", "FAIL")
        assert point["welfare"] == pytest.approx(decision["welfare"])
        assert 0.0 <= point["accuracy"] <= 1.0
        assert point["accuracy"] == run.metrics["test"]["accuracy"]
        assert point["fairness_gap"] is not None and point["fairness_gap"] >= 0
        by_group = point["group_accuracy"]  # the gap's attribute (race under criminal-justice)
        assert by_group and all(0.0 <= v <= 1.0 for v in by_group.values())
        assert (
            ".fairness.race.disparities.equalized_odds_difference" in point["fairness_gap_metric"]
        )
        assert point["epsilon"] is None and point["private"] is False
        assert point["ledger_entry"].split()[1] == decision["ledger"]["entry_hash"]
    # Two points: one is never dominated, unless neither model is informative (4 optimizer
    # steps often learn only the class prior), and an uninformative point is on no front.
    informative = [p for p in points if p["informative"]]
    front = document["fronts"]["accuracy_vs_fairness_gap"]
    assert bool(front) == bool(informative)
    for point in points:
        audit = json.loads((out / point["run_dir"] / "audit" / "audit.json").read_text())
        assert point["informative"] == audit["informativeness"]["informative"]
    assert not (out.parent / "elsewhere").exists()  # runs live in the sweep folder
    stdout = swept["stdout"]
    assert "[1/2] learning_rate=0.0001, seed=1: accuracy" in stdout
    assert "[2/2] learning_rate=0.0003, seed=1: accuracy" in stdout
    assert "wrote " in stdout and "2 of 2 points ran" in stdout


def test_every_run_is_in_the_ledger(swept: dict[str, Any]) -> None:
    with Ledger.open(str(swept["ledger"])) as ledger:
        for point in swept["document"]["points"]:
            kinds = [e.kind for e in ledger.entries(run_id=point["run_id"])]
            assert kinds == ["run", "decision"]
        assert ledger.verify()


def test_sweep_page_renders_in_headless_chromium(swept: dict[str, Any]) -> None:
    chromium_path()  # skip before anything is opened when the browser is missing
    page_path = swept["out"] / "index.html"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "sweep-page.png"
    with open_in_chromium(page_path.as_uri()) as visit:
        figures = visit.page.eval_on_selector_all("figure.chart svg", FIGURE_BOXES)
        rows = visit.page.eval_on_selector_all(
            "table.points tbody tr", "rows => rows.map(r => r.innerText)"
        )
        visit.page.screenshot(path=str(screenshot), full_page=True)
    assert visit.problems == []
    assert visit.requests == [page_path.as_uri()]  # self-contained: nothing else is fetched
    titles = [f["title"] for f in figures]
    assert titles == ["accuracy vs fairness gap", "accuracy vs epsilon", "policy score W per point"]
    for figure in figures:
        assert figure["w"] > 300 and figure["h"] > 50, figure
    assert figures[0]["dots"] == figures[1]["dots"] == 2  # one dot per point
    assert figures[2]["bars"] == 2
    assert len(rows) == 2
    for row, point in zip(rows, swept["document"]["points"], strict=True):
        assert point["run_id"] in row and point["decision"] in row
    assert screenshot.stat().st_size > 20_000
