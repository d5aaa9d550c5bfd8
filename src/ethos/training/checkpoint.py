"""Checkpoints a killed or interrupted run resumes from, bit for bit.

A checkpoint holds everything the rest of the run depends on: model weights (and the best epoch's
weights when they differ), optimizer and scheduler state, the random number generators that
decide batch order (numpy) and dropout (torch, Python, CUDA), and the loop's counters and history.
One is written after every epoch but the last (``epoch-N``: N epochs done) and, when Ctrl-C stops
training, after the optimizer step in progress (``epoch-N-batch-K``: K batches of epoch N done).
It is written into a hidden temporary folder and renamed into place, so a crash while saving
leaves the previous checkpoint untouched; each file's sha256 is recorded, so a damaged file is
named rather than half-loaded.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ethos.errors import ModelError
from ethos.hashing import file_sha256

STATE_FILE = "loop.json"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best_model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"
_NAME = re.compile(r"epoch-(\d+)(?:-batch-(\d+))?")


@dataclass
class LoopState:
    """The loop's own bookkeeping at a step boundary (weights and optimizer live in files).

    ``epoch`` counts finished epochs. ``batches_done`` is 0 at an epoch boundary; a checkpoint
    taken inside epoch ``epoch + 1`` records how many of its batches were trained, and then
    ``numpy_rng`` is the generator as it was when that epoch began, so a resumed run draws the
    same examples and batch order and skips the batches already done.
    """

    epoch: int
    optimizer_steps: int
    examples_seen: int
    tokens_seen: int
    train_seconds: float
    history: list[dict[str, Any]]
    best_validation: dict[str, Any]
    best_epoch: int
    stale: int
    numpy_rng: dict[str, Any]
    total_steps: int
    batches_done: int = 0
    processes: int = 1
    """Training processes that took it: a resume must run as many (their shares of each batch
    and their dropout generators depend on it)."""


@dataclass
class Checkpoint:
    """A loaded checkpoint, ready for the loop to restore."""

    state: LoopState
    model: dict[str, torch.Tensor]
    best_model: dict[str, torch.Tensor] | None
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    torch_rng: torch.Tensor
    python_rng: Any
    path: Path
    cuda_rng: list[torch.Tensor] | None = None
    torch_rng_per_process: list[torch.Tensor] | None = None
    """Each process's torch generator, in rank order, when several trained."""


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage (tied embeddings, views).
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def checkpoint_name(state: LoopState) -> str:
    """``epoch-N`` after N whole epochs; ``epoch-N-batch-K`` for K batches into epoch N."""
    if state.batches_done == 0:
        return f"epoch-{state.epoch}"
    return f"epoch-{state.epoch + 1}-batch-{state.batches_done}"


def _rng_states() -> dict[str, Any]:
    """CPU generator always; the CUDA ones too where dropout on a GPU draws from them."""
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def save_checkpoint(
    directory: Path,
    state: LoopState,
    *,
    model_state: dict[str, torch.Tensor],
    best_state: dict[str, torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    torch_rng_per_process: list[torch.Tensor] | None = None,
) -> Path:
    """Write ``directory/<checkpoint_name>`` atomically and drop older checkpoints; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(state)
    final = directory / name
    staging = directory / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        save_file(_contiguous(model_state), str(staging / MODEL_FILE))
        if best_state is not None:
            save_file(_contiguous(best_state), str(staging / BEST_FILE))
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            staging / OPTIMIZER_FILE,
        )
        rng = _rng_states()
        if torch_rng_per_process is not None:
            rng["torch_per_process"] = torch_rng_per_process
        torch.save(rng, staging / RNG_FILE)
        files = {p.name: file_sha256(p) for p in sorted(staging.iterdir())}
        version, internal, gauss = random.getstate()
        payload = {
            "state": state.__dict__,
            "python_rng": [version, list(internal), gauss],
            "files": files,
        }
        (staging / STATE_FILE).write_text(json.dumps(payload, indent=1, allow_nan=False))
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for older in directory.glob("epoch-*"):
        if older != final:
            shutil.rmtree(older, ignore_errors=True)
    return final


def _progress(name: str) -> tuple[int, int] | None:
    """(epochs done, batches of the next epoch done) from a checkpoint folder's name."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    if match.group(2) is None:
        return int(match.group(1)), 0
    return int(match.group(1)) - 1, int(match.group(2))


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint folder (hidden temporary folders are never complete)."""
    ranked: dict[tuple[int, int], Path] = {}
    for path in directory.glob("epoch-*"):
        rank = _progress(path.name)
        if rank is not None and path.is_dir():
            ranked[rank] = path
    return ranked[max(ranked)] if ranked else None


def _corrupt(path: Path, what: str) -> ModelError:
    return ModelError(
        f"checkpoint {path} is damaged: {what}",
        hint="delete that folder to start the run again from scratch "
        "(nothing else in the run directory was changed)",
    )


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint folder; a damaged or incomplete one is a clear error."""
    state_path = path / STATE_FILE
    try:
        payload = json.loads(state_path.read_text())
        state = LoopState(**payload["state"])
        files: dict[str, str] = payload["files"]
        version, internal, gauss = payload["python_rng"]
        python_rng = (version, tuple(internal), gauss)
    except FileNotFoundError:
        raise _corrupt(path, f"{STATE_FILE} is missing") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise _corrupt(path, f"{STATE_FILE} is unreadable ({exc})") from None
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise _corrupt(path, f"{name} is missing")
        if file_sha256(file) != expected:
            raise _corrupt(path, f"{name} does not match its recorded sha256")
    try:
        model = load_file(str(path / MODEL_FILE))
        best = load_file(str(path / BEST_FILE)) if BEST_FILE in files else None
        optim = torch.load(path / OPTIMIZER_FILE, weights_only=True)
        rng = torch.load(path / RNG_FILE, weights_only=True)
    except Exception as exc:  # any failure to decode means a damaged checkpoint
        raise _corrupt(path, str(exc)) from None
    return Checkpoint(
        state=state,
        model=model,
        best_model=best,
        optimizer=optim["optimizer"],
        scheduler=optim["scheduler"],
        torch_rng=rng["torch"],
        python_rng=python_rng,
        path=path,
        cuda_rng=rng.get("cuda"),
        torch_rng_per_process=rng.get("torch_per_process"),
    )


def numpy_state(generator: np.random.Generator) -> dict[str, Any]:
    """The generator's state as plain JSON (PCG64 state is a few integers)."""
    return dict(generator.bit_generator.state)


def restore_numpy(generator: np.random.Generator, state: dict[str, Any]) -> None:
    generator.bit_generator.state = state
