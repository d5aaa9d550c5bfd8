"""Checkpoints: a SIGKILLed or Ctrl-C'd `ethos train` process resumes to the same result, the
command line says where the run is and how to continue it, and damaged checkpoints are named,
not loaded."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import ETHOS, ethos_env, run_ethos
from ethos import EthosError, ModelError
from ethos.config import load_config
from ethos.rundir import RunDir
from ethos.training import run as run_module
from ethos.training import train
from ethos.training.checkpoint import latest_checkpoint, load_checkpoint
from ethos.training.interrupt import Interrupted
from ethos.training.run import resume

CONFIG = """\
data: {{source: compas, sample: 200, min_group_size: 1}}
model: {{max_length: 32}}
train: {{epochs: {epochs}, batch_size: 16, learning_rate: 1.0e-4, keep_checkpoints: {keep}}}
seed: 11
output_dir: {out}
"""


def write_config(tmp: Path, *, epochs: int = 3, keep: bool = False) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "run.yaml"
    out = tmp / "runs"
    path.write_text(CONFIG.format(epochs=epochs, keep=str(keep).lower(), out=out))
    return path


def ethos_train(*args: str, stdout: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    # SIGINT back to its default: a test runner started in the background (CI, nohup) passes it
    # on ignored, and then Python never turns Ctrl-C into KeyboardInterrupt.
    return subprocess.Popen(
        [*ETHOS, "train", *args, "--quiet"],
        env=ethos_env(),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_checkpoint(runs: Path, process: subprocess.Popen[str], timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for found in runs.glob("*/checkpoints/epoch-*"):
            if found.is_dir() and (found / "loop.json").is_file():
                return found
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """The reference: one `ethos train` process, never stopped."""
    # Every run here is an `ethos train` process: an in-process run would inherit whatever
    # earlier tests left in torch's global state (thread count above all), and a different
    # matmul reduction order changes the last bits of the weights.
    tmp = tmp_path_factory.mktemp("straight")
    straight = ethos_train(str(write_config(tmp)))
    _, errors = straight.communicate(timeout=900)
    assert straight.returncode == 0, errors
    (manifest,) = (tmp / "runs").glob("*/manifest.json")
    return RunDir.open(manifest.parent)


def assert_same_result(uninterrupted: RunDir, resumed: RunDir) -> None:
    """Every epoch's validation metrics, not only the final weights: the final model is the
    best epoch's, and a resume that went wrong after an early best epoch saves the same weights."""
    a, b = uninterrupted.metrics, resumed.metrics
    assert a["history"] == b["history"]
    assert a["test"] == b["test"]
    assert a["validation"] == b["validation"]
    train_a, train_b = uninterrupted.manifest["training"], resumed.manifest["training"]
    for key in ("optimizer_steps", "examples_seen", "tokens_seen", "best_epoch"):
        assert train_a[key] == train_b[key]
    assert (
        uninterrupted.manifest["model"]["weights_sha256"]
        == (resumed.manifest["model"]["weights_sha256"])
    )


@pytest.mark.slow  # about 22 s; the Ctrl-C test below resumes a process run to the same bits
def test_sigkilled_run_resumes_to_the_uninterrupted_result(
    uninterrupted: RunDir, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "b")
    process = ethos_train(str(config))
    checkpoint = wait_for_checkpoint(tmp_path / "b" / "runs", process, timeout=600)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    run_dir = checkpoint.parents[1]
    assert not (run_dir / "manifest.json").exists()
    with pytest.raises(EthosError, match=r"(?s)unfinished run.*--resume"):
        RunDir.open(run_dir)

    done = run_ethos("train", "--resume", str(run_dir), "--quiet", timeout=600)
    assert done.returncode == 0, done.stderr
    resumed = RunDir.open(run_dir)
    assert resumed.manifest["training"]["resumed_from_epoch"] >= 1
    assert not (run_dir / "checkpoints").exists()  # deleted once the run is whole
    assert_same_result(uninterrupted, resumed)


def test_ctrl_c_checkpoints_prints_the_resume_command_and_resumes_exactly(
    uninterrupted: RunDir, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    process = ethos_train(str(write_config(tmp_path)), stdout=subprocess.PIPE)
    assert process.stdout is not None
    first = process.stdout.readline()  # printed when the folder is made, before training
    announced = Path(first.removeprefix("run directory: ").strip())
    assert first.startswith("run directory: ") and announced.parent == runs
    assert not (announced / "manifest.json").exists()
    wait_for_checkpoint(runs, process, timeout=600)
    process.send_signal(signal.SIGINT)  # Ctrl-C, in epoch 2 of 3 (or its evaluation)
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 130, errors
    assert "Traceback" not in errors
    lines = [line for line in errors.splitlines() if line.strip()]
    assert len(lines) == 1, errors
    found = re.fullmatch(
        r"interrupted \(checkpoint (\S+)\); continue with: (ethos train .*)", lines[0]
    )
    assert found is not None, lines[0]
    command = shlex.split(found.group(2))
    assert command[:3] == ["ethos", "train", "--resume"] and Path(command[3]) == announced
    assert (announced / "checkpoints" / found.group(1) / "loop.json").is_file()
    assert not (announced / "manifest.json").exists()

    done = run_ethos(*command[1:], "--quiet", timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"resuming from {found.group(1)}" in done.stdout
    assert_same_result(uninterrupted, RunDir.open(announced))


def test_rerunning_a_config_names_its_unfinished_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ethos.cli import _train_and_report

    config = load_config(write_config(tmp_path))

    def stopped_early(path: Path, *args: object, **kwargs: object) -> RunDir:
        raise KeyboardInterrupt  # Ctrl-C while the data load, before any checkpoint

    monkeypatch.setattr(run_module, "_run", stopped_early)
    with pytest.raises(Interrupted) as caught:
        train(config, quiet=True, run_name="earlier")
    earlier = tmp_path / "runs" / "earlier"
    assert caught.value.run_dir == earlier and caught.value.checkpoint is None
    assert (earlier / "config.yaml").is_file()  # kept: --resume starts it from the beginning

    other = config.model_copy(update={"seed": 12})  # another config's unfinished run is not named
    with pytest.raises(Interrupted):
        train(other, quiet=True, run_name="other")
    capsys.readouterr()

    def fails(path: Path, *args: object, **kwargs: object) -> RunDir:
        raise EthosError("stopped by the test once the run directory exists")

    monkeypatch.setattr(run_module, "_run", fails)
    with pytest.raises(EthosError, match="stopped by the test"):
        _train_and_report(config, quiet=True)
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: {earlier} is an unfinished run of this config; continue it with "
        f"`ethos train --resume {earlier}` (starting a new run now)"
    ]
    started = Path(out.splitlines()[0].removeprefix("run directory: "))
    assert started.parent == tmp_path / "runs" and started != earlier  # a new run all the same


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run with its epoch-1 checkpoint kept, made to look killed."""
    tmp = tmp_path_factory.mktemp("killed")
    run = train(load_config(write_config(tmp, epochs=2, keep=True)), quiet=True)
    for name in ("manifest.json", "metrics.json", "predictions.parquet"):
        (run.path / name).unlink()
    shutil.rmtree(run.path / "model")
    return run.path


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def copy_of(run: Path, tmp: Path) -> Path:
    target = tmp / run.name
    shutil.copytree(run, target)
    return target


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda c: (c / "model.safetensors").write_bytes(b"\0" * 100), "model.safetensors"),
        (
            lambda c: (c / "optimizer.pt").write_bytes((c / "optimizer.pt").read_bytes()[:999]),
            "optimizer.pt",
        ),
        (lambda c: (c / "loop.json").unlink(), "loop.json is missing"),
        (lambda c: (c / "loop.json").write_text("{not json"), "loop.json is unreadable"),
        (lambda c: (c / "rng.pt").unlink(), "rng.pt is missing"),
    ],
    ids=["zeroed-weights", "truncated-optimizer", "no-state", "bad-state", "no-rng"],
)
def test_damaged_checkpoint_is_named_and_nothing_is_written(
    killed_run: Path, tmp_path: Path, damage: object, message: str
) -> None:
    run = copy_of(killed_run, tmp_path)
    checkpoint = latest_checkpoint(run / "checkpoints")
    assert checkpoint is not None and checkpoint.name == "epoch-1"
    damage(checkpoint)  # type: ignore[operator]
    before = snapshot(run)
    with pytest.raises(ModelError, match=rf"(?s)checkpoint .*epoch-1 is damaged: .*{message}"):
        resume(run, quiet=True)
    assert snapshot(run) == before


def test_intact_checkpoint_loads_and_records_the_loop(killed_run: Path) -> None:
    checkpoint = latest_checkpoint(killed_run / "checkpoints")
    assert checkpoint is not None
    loaded = load_checkpoint(checkpoint)
    assert loaded.state.epoch == 1
    assert loaded.state.optimizer_steps > 0
    assert len(loaded.state.history) == 1
    assert "bit_generator" in loaded.state.numpy_rng
    assert not list((killed_run / "checkpoints").glob(".*"))  # no temporary folders left


def test_resume_refuses_what_it_cannot_continue(killed_run: Path, tmp_path: Path) -> None:
    with pytest.raises(EthosError, match="not an ethos run directory"):
        resume(tmp_path, quiet=True)
    finished = copy_of(killed_run, tmp_path / "finished")
    (finished / "manifest.json").write_text("{}")
    with pytest.raises(EthosError, match="finished run"):
        resume(finished, quiet=True)
    edited = copy_of(killed_run, tmp_path / "edited")
    config = edited / "config.yaml"
    config.write_text(config.read_text().replace("seed: 11", "seed: 12"))
    with pytest.raises(EthosError, match="changed after the run started"):
        resume(edited, quiet=True)
    other_data = copy_of(killed_run, tmp_path / "data")
    recorded = json.loads((other_data / "data.json").read_text())
    recorded["fingerprint"] = "0" * 64
    (other_data / "data.json").write_text(json.dumps(recorded))
    with pytest.raises(EthosError, match=r"data of .* changed since the run started"):
        resume(other_data, quiet=True)


def test_train_cli_needs_exactly_one_of_config_and_resume(tmp_path: Path) -> None:
    for args in ([], [str(tmp_path / "x.yaml"), "--resume", str(tmp_path)]):
        done = run_ethos("train", *args)
        assert done.returncode == 2
        assert "CONFIG" in done.stderr and "Traceback" not in done.stderr
