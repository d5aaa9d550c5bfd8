"""Property: a run stopped by Ctrl-C after any epoch (or inside one) and resumed, as often as it
is stopped, ends with the weights and per-epoch metrics of the uninterrupted run, bit for bit.

Each stop is a real SIGINT raised in this process at a chosen point (right after a checkpoint is
written, or while a chosen batch is being prepared); what happens next is what happens on a
user's Ctrl-C: the loop finishes the step in progress, writes its checkpoint and raises
Interrupted. Every resume then starts from what is on disk, as ``ethos train --resume`` does.

The whole per-epoch history is compared, not only the final weights: the final model is the best
validation epoch's, so a run that went wrong after an early best epoch would still save the same
weights (the first resume test passed for that reason while every resumed epoch differed).
"""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from ethos import RunConfig
from ethos.datasets import german
from ethos.rundir import RunDir
from ethos.training import loop, train
from ethos.training.interrupt import Interrupted
from ethos.training.run import resume

COMPAS = {"source": "compas", "sample": 150, "min_group_size": 1}
TINY_COMPAS = {**COMPAS, "sample": 100}
CSV_COLUMNS = [
    "id",
    "checking_account",
    "duration_months",
    "credit_history",
    "purpose",
    "credit_amount_dm",
    "savings",
    "age",
    "sex",
    "credit_risk",
]

CASES: dict[str, dict[str, Any]] = {
    # The shape: a user CSV, batch 32, balanced class weights.
    "csv-b32-balanced": {
        "data": "csv",
        "train": {"epochs": 3, "batch_size": 32, "class_weights": "balanced"},
    },
    "compas-b16": {"data": COMPAS, "train": {"epochs": 3, "batch_size": 16}},
    "tiny-compas-b16": {"data": TINY_COMPAS, "train": {"epochs": 2, "batch_size": 16}},
    "lora-b24-unsorted": {
        "data": COMPAS,
        "train": {
            "epochs": 3,
            "batch_size": 24,
            "learning_rate": 1e-3,
            "group_by_length": False,
            "peft": {"method": "lora", "r": 4, "alpha": 8},
        },
    },
    # 7 batches an epoch in groups of 3: every epoch ends on a short group.
    "accumulate-3-early-stop": {
        "data": COMPAS,
        "train": {
            "epochs": 4,
            "batch_size": 16,
            "gradient_accumulation_steps": 3,
            "early_stopping": {"metric": "loss", "patience": 2},
        },
    },
    # Poisson batches, per-example clipping and noise all draw from the restored generators.
    "dp-sgd": {
        "data": COMPAS,
        "train": {
            "epochs": 3,
            "batch_size": 16,
            "learning_rate": 1e-3,
            "privacy": {"noise_multiplier": 1.0, "accountant": "rdp"},
        },
    },
    # Each epoch perturbs a fresh half of the texts (the loop's generator), plus an FGM pass.
    "augment-fgm": {
        "data": COMPAS,
        "train": {
            "epochs": 3,
            "batch_size": 16,
            "adversarial": {"augment": ["char_swap", "casing"], "embedding": "fgm"},
        },
    },
}
DEFAULT_SUITE = ("csv-b32-balanced", "tiny-compas-b16")


def _params(names: tuple[str, ...] | list[str]) -> list[Any]:
    return [
        pytest.param(n, marks=() if n in DEFAULT_SUITE else pytest.mark.slow, id=n) for n in names
    ]


@pytest.fixture(scope="module", autouse=True)
def fixed_threads() -> Iterator[None]:
    """One thread count for every run here: the matmul reduction order depends on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def user_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's own file: 240 real German-credit rows, written as a plain CSV."""
    path = tmp_path_factory.mktemp("csv") / "credit.csv"
    german().head(240)[CSV_COLUMNS].to_csv(path, index=False)
    return path


def config_for(name: str, output: Path, csv: Path) -> RunConfig:
    case = CASES[name]
    if case["data"] == "csv":
        data: dict[str, Any] = {
            "source": str(csv),
            "id_field": "id",
            "record_fields": CSV_COLUMNS[1:8],
            "label": "credit_risk",
            "sensitive": ["sex"],
            "groups": ["sex"],
            "min_group_size": 1,
        }
    else:
        data = case["data"]
    return RunConfig.model_validate(
        {
            "data": data,
            "model": {"max_length": 32},
            "train": {"learning_rate": 1e-4, **case["train"]},
            "seed": 3,
            "output_dir": str(output),
        }
    )


@pytest.fixture(scope="module")
def uninterrupted(
    tmp_path_factory: pytest.TempPathFactory, user_csv: Path
) -> Callable[[str], RunDir]:
    """Each case's uninterrupted run, trained once and shared by every test of that case."""
    done: dict[str, RunDir] = {}

    def get(name: str) -> RunDir:
        if name not in done:
            out = tmp_path_factory.mktemp(f"straight-{name}")
            done[name] = train(config_for(name, out, user_csv), quiet=True)
        return done[name]

    return get


def ctrl_c_after_checkpoint(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Press Ctrl-C right after the checkpoint ``name`` is written."""
    real = loop.save_checkpoint

    def save(*args: Any, **kwargs: Any) -> Path:
        path = real(*args, **kwargs)
        if path.name == name:
            signal.raise_signal(signal.SIGINT)
        return path

    monkeypatch.setattr(loop, "save_checkpoint", save)


def ctrl_c_at_batch(monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    """Press Ctrl-C while the ``batch``-th training batch of this call is being prepared."""
    real = loop.collate
    seen = 0

    def collate(*args: Any, **kwargs: Any) -> Any:
        nonlocal seen
        seen += 1
        if seen == batch:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "collate", collate)


def stopped(start: Callable[[], RunDir]) -> Interrupted:
    with pytest.raises(Interrupted) as caught:
        start()
    assert caught.value.run_dir is not None and caught.value.checkpoint is not None
    assert not (caught.value.run_dir / "manifest.json").exists()
    return caught.value


def batches_per_epoch(run: RunDir) -> int:
    training = run.manifest["training"]
    per_epoch = training["examples_seen"] // len(run.metrics["history"])
    return math.ceil(per_epoch / run.config.train.batch_size)


def assert_same_run(straight: RunDir, resumed: RunDir) -> None:
    assert resumed.metrics["history"] == straight.metrics["history"]
    assert resumed.metrics["test"] == straight.metrics["test"]
    a, b = straight.manifest["training"], resumed.manifest["training"]
    for key in ("optimizer_steps", "examples_seen", "tokens_seen", "best_epoch", "stopped_early"):
        assert b[key] == a[key], key
    assert (
        resumed.manifest["model"]["weights_sha256"] == straight.manifest["model"]["weights_sha256"]
    )


@pytest.fixture(autouse=True)
def default_sigint() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler in this process")


@pytest.mark.parametrize("name", _params([n for n in CASES if n != "tiny-compas-b16"]))
def test_stopped_after_every_epoch_and_resumed_each_time(
    name: str,
    uninterrupted: Callable[[str], RunDir],
    user_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    straight = uninterrupted(name)
    epochs = len(straight.metrics["history"])
    assert epochs >= 2
    config = config_for(name, tmp_path, user_csv)
    ctrl_c_after_checkpoint(monkeypatch, "epoch-1")
    run_dir = stopped(lambda: train(config, quiet=True)).run_dir
    assert run_dir is not None
    for epoch in range(2, epochs):
        ctrl_c_after_checkpoint(monkeypatch, f"epoch-{epoch}")
        interrupted = stopped(lambda: resume(run_dir, quiet=True))
        assert interrupted.checkpoint is not None
        assert interrupted.checkpoint.name == f"epoch-{epoch}"
    monkeypatch.undo()
    finished = resume(run_dir, quiet=True)
    assert finished.manifest["training"]["resumed_from_epoch"] == epochs - 1
    assert_same_run(straight, finished)


@pytest.mark.parametrize(
    ("name", "first", "second"),
    [
        pytest.param("tiny-compas-b16", 2, 3, id="tiny-compas-b16"),
        pytest.param("accumulate-3-early-stop", 2, 4, id="accumulate-3", marks=pytest.mark.slow),
    ],
)
def test_stopped_inside_epochs_and_resumed(
    name: str,
    first: int,
    second: int,
    uninterrupted: Callable[[str], RunDir],
    user_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C mid-epoch checkpoints the step it finishes; the resume skips the batches done."""
    straight = uninterrupted(name)
    config = config_for(name, tmp_path, user_csv)
    ctrl_c_at_batch(monkeypatch, first)
    interrupted = stopped(lambda: train(config, quiet=True))
    assert interrupted.checkpoint is not None
    assert re.fullmatch(r"epoch-1-batch-\d+", interrupted.checkpoint.name)
    run_dir = interrupted.run_dir
    assert run_dir is not None
    # The second stop lands in the epoch after the one the resume starts in, whose first
    # batches_done batches it skips without preparing them.
    done = int(interrupted.checkpoint.name.rsplit("-", 1)[1])
    ctrl_c_at_batch(monkeypatch, batches_per_epoch(straight) - done + second)
    again = stopped(lambda: resume(run_dir, quiet=True))
    assert again.checkpoint is not None
    assert re.fullmatch(r"epoch-2-batch-\d+", again.checkpoint.name)
    monkeypatch.undo()
    assert_same_run(straight, resume(run_dir, quiet=True))
