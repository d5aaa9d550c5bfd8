"""`ethos sweep --ray`: the same points as the in-process sweep, as Ray tasks.

One local Ray instance (2 CPUs) serves the module. The same 8-point grid of tiny COMPAS runs is
swept once in this process and once on Ray: 4 points train (two learning rates, two seeds) and 4
name a data file that does not exist, so they raise at once. Training is deterministic given the
seed (``set_seed`` before the fit, torch capped to one thread on both sides), so both sweeps must
agree on every measured value and draw the same page. A second, small Ray sweep has its worker
killed mid-point. Nothing else trains.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from cli_helpers import run_ethos
from ethos.config import RunConfig
from ethos.errors import EthosError
from ethos.governance.ledger import Ledger
from ethos.ray_connect import check_address_answers
from ethos.rundir import MANIFEST
from ethos.sweep import point as sweep_point
from ethos.sweep import runner
from ethos.sweep.ray_backend import ledger_url_for_workers

TINY = {
    "data": {"source": "compas", "sample": 300, "min_group_size": 1},
    "model": {"max_length": 32},
    "train": {"epochs": 1, "batch_size": 16, "max_steps": 4},
    "policy": "criminal-justice",
}
MISSING = "/nonexistent/ethos-sweep-missing.csv"
GRID = [f"data.source=[compas, {MISSING}]", "learning_rate=[1e-4,3e-4]", "seed=[1,2]"]
# What may differ between two sweeps of the same grid: ids, hashes, times.
UNSTABLE = {"run_id", "run_dir", "ledger_entry", "seconds"}


def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _sweep(tmp: Path, **options: Any) -> dict[str, Any]:
    lines: list[str] = []
    result = runner.sweep(
        RunConfig.model_validate(TINY),
        GRID,
        ledger_url=str(tmp / "ledger.db"),
        out=tmp / "sweep",
        quiet=True,
        log=lines.append,
        **options,
    )
    document = json.loads(result.json_path.read_text())
    return {"result": result, "document": document, "tmp": tmp, "lines": lines}


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in each Ray task (--cpus-per-point 1)
    try:
        return _sweep(tmp_path_factory.mktemp("in-process"))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def on_ray(ray_instance: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _sweep(tmp_path_factory.mktemp("on-ray"), ray="local", cpus_per_point=1)


def _stable(point: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in point.items() if k not in UNSTABLE}


def _normalised_page(swept: dict[str, Any]) -> str:
    page = (swept["result"].page).read_text()
    for point in swept["document"]["points"]:
        if point["run_id"]:
            page = page.replace(point["run_id"], f"RUN-{point['index']}")
    for key in ("created_utc", "updated_utc"):
        page = page.replace(swept["document"][key], key)
    return page


@pytest.mark.slow  # the in-process sweep to compare with: about 35 s
def test_ray_points_match_the_in_process_points(
    in_process: dict[str, Any], on_ray: dict[str, Any]
) -> None:
    here, there = in_process["document"]["points"], on_ray["document"]["points"]
    assert [p["status"] for p in there] == ["done"] * 4 + ["failed"] * 4
    differing = [
        (p["index"], key, p.get(key), q.get(key))
        for p, q in zip(there, here, strict=True)
        for key in _stable(p)
        if _stable(p)[key] != _stable(q).get(key)
    ]
    assert not differing, differing
    assert [p["run_dir"] is None for p in there] == [p["run_dir"] is None for p in here]
    assert on_ray["document"]["fronts"] == in_process["document"]["fronts"]
    for point in there[:4]:
        assert point["run_dir"] == f"runs/{point['run_id']}"
        assert point["decision"] in ("PASS", "REVIEW", "FAIL") and point["accuracy"] is not None


@pytest.mark.slow  # the in-process sweep to compare with: about 35 s
def test_ray_page_is_the_in_process_page(
    in_process: dict[str, Any], on_ray: dict[str, Any]
) -> None:
    assert _normalised_page(on_ray) == _normalised_page(in_process)


def test_a_point_that_raises_fails_and_the_others_run(on_ray: dict[str, Any]) -> None:
    result, out = on_ray["result"], on_ray["result"].path
    assert result.exit_code == 1
    for point in result.points[4:]:
        assert point.status == "failed" and point.run_dir is None
        assert point.error == f"data file {MISSING} does not exist"
    finished = sorted(p.name for p in (out / "runs").iterdir() if not p.name.startswith("."))
    assert finished == sorted(p.run_id for p in result.points[:4])
    assert all((out / "runs" / name / MANIFEST).is_file() for name in finished)
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "runs", "sweep.json"]
    assert any("4 of 8 points ran" in line for line in on_ray["lines"])
    assert any("on a local Ray instance" in line for line in on_ray["lines"])


def test_ray_workers_append_to_one_verified_ledger(on_ray: dict[str, Any]) -> None:
    with Ledger.open(str(on_ray["tmp"] / "ledger.db")) as ledger:
        assert ledger.verify().ok
        assert len(ledger.entries(kind="run")) == 4
        for point in on_ray["document"]["points"][:4]:
            kinds = [e.kind for e in ledger.entries(run_id=point["run_id"])]
            assert kinds == ["run", "decision"]
            assert (
                point["ledger_entry"].split()[1]
                == ledger.entries(run_id=point["run_id"])[-1].entry_hash
            )


@pytest.mark.slow  # the in-process sweep to compare with: about 35 s
def test_the_ray_ledger_records_what_the_in_process_ledger_records(
    in_process: dict[str, Any], on_ray: dict[str, Any]
) -> None:
    """Same kinds, data, weights and decisions, entry for entry (the config hashes differ only
    by each sweep's own output folder)."""

    def records(swept: dict[str, Any]) -> list[tuple[Any, ...]]:
        with Ledger.open(str(swept["tmp"] / "ledger.db")) as ledger:
            assert ledger.verify().ok
            return sorted(
                (e.kind, e.dataset_fingerprint, e.model_hash, e.decision) for e in ledger.entries()
            )

    here, there = records(in_process), records(on_ray)
    assert there == here
    assert [r[0] for r in there].count("run") == 4


def test_a_killed_worker_fails_its_point_and_leaves_no_half_written_run(
    ray_instance: Any, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    killed: list[dict[str, Any]] = []

    def kill_when_claimed() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            claim = sweep_point.read_claim(out / runner.CLAIMS, 0)
            if claim is not None:
                os.kill(int(claim["pid"]), signal.SIGKILL)  # the worker, mid-point
                killed.append(claim)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_claimed, daemon=True)
    killer.start()
    result = runner.sweep(
        RunConfig.model_validate(TINY),
        [f"data.source=[compas, {MISSING}]"],
        ledger_url=str(tmp_path / "ledger.db"),
        out=out,
        quiet=True,
        log=lambda _: None,
        ray="local",
    )
    killer.join(timeout=5)
    assert killed, "the point never claimed a run folder"
    first, second = json.loads((out / "sweep.json").read_text())["points"]
    assert first["status"] == "failed"
    assert "worker running this point died" in first["error"]
    assert f"pid {killed[0]['pid']}" in first["error"] and "not retried" in first["error"]
    name = Path(killed[0]["run"]).name
    assert first["run_dir"] == f"runs/.failed/{name}"
    assert (out / "runs" / ".failed" / name).is_dir()  # kept, out of the way
    assert [p.name for p in (out / "runs").iterdir()] == [".failed"]  # nothing half-written
    assert second["status"] == "failed" and "does not exist" in second["error"]  # it went on
    assert not (out / runner.CLAIMS).exists()
    assert result.exit_code == 1
    with Ledger.open(str(tmp_path / "ledger.db")) as ledger:
        assert ledger.verify().ok and len(ledger.entries(kind="run")) == 0


def test_an_address_that_does_not_answer_fails_fast_and_writes_nothing(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(EthosError, match="does not answer") as caught:
        runner.sweep(
            RunConfig.model_validate(TINY),
            ["seed=[1,2]"],
            ledger_url=str(tmp_path / "ledger.db"),
            out=tmp_path / "sweep",
            ray=address,
        )
    assert time.monotonic() - started < 15
    assert caught.value.hint and "ray start --head" in caught.value.hint
    assert not (tmp_path / "sweep").exists()


def test_the_command_line_names_an_address_that_does_not_answer(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    address = f"127.0.0.1:{_free_port()}"
    done = run_ethos(
        "sweep", str(config), "--grid", "seed=[1]", "--ray", address,
        "--out", str(tmp_path / "sweep"), "--ledger", str(tmp_path / "ledger.db"),
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    text = re.sub(r"\s+", " ", done.stdout + done.stderr)
    assert f"the Ray cluster at '{address}' does not answer" in text
    assert not (tmp_path / "sweep").exists()


def test_a_malformed_address_is_named() -> None:
    with pytest.raises(EthosError, match="is not host:port"):
        check_address_answers("head-node")


def test_without_ray_installed_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(EthosError, match="needs the 'ray' package") as caught:
        runner.sweep(
            RunConfig.model_validate(TINY),
            ["seed=[1]"],
            ledger_url=str(tmp_path / "ledger.db"),
            out=tmp_path / "sweep",
            ray="local",
        )
    assert caught.value.hint and "pip install 'ethos[scale]'" in caught.value.hint
    assert not (tmp_path / "sweep").exists()


def test_without_a_ledger_option_workers_get_the_default_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETHOS_LEDGER_URL", str(tmp_path / "shared.db"))
    url = ledger_url_for_workers(None)  # resolved on the driver, handed to every task
    assert url == f"sqlite+pysqlite:///{tmp_path / 'shared.db'}"
    with Ledger.open(url) as ledger, Ledger.open(None) as default:
        assert ledger.url == default.url  # the ledger the in-process sweep would use


def test_unfinished_run_folders_are_set_aside(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "finished").mkdir(parents=True)
    (runs / "finished" / MANIFEST).write_text("{}")
    (runs / "killed").mkdir()
    (runs / "killed" / "config.yaml").write_text("seed: 1\n")
    assert [p.name for p in sweep_point.unfinished(runs)] == ["killed"]
    assert sweep_point.set_aside(runs / "finished") == runs / "finished"
    assert sweep_point.set_aside(runs / "killed") == runs / ".failed" / "killed"
    assert sweep_point.set_aside(runs / "removed by training") is None
    assert (runs / ".failed" / "killed" / "config.yaml").is_file()
    assert sorted(p.name for p in runs.iterdir()) == [".failed", "finished"]
