"""Per-epoch checkpoints a killed run resumes from, bit for bit.

A checkpoint holds everything the next epoch depends on: model weights (and the best epoch's
weights when they differ), optimizer and scheduler state, the random number generators that
decide batch order (numpy) and dropout (torch, Python), and the loop's counters and history. It is
written into a hidden temporary folder and renamed into place, so a crash while saving leaves the
previous checkpoint untouched; each file's sha256 is recorded, so a damaged file is named rather
than half-loaded.
"""

from __future__ import annotations

import json
import os
import random
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

CHECKPOINTS = "checkpoints"
STATE_FILE = "loop.json"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best_model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"


@dataclass
class LoopState:
    """The loop's own bookkeeping at an epoch boundary (weights and optimizer live in files)."""

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


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage (tied embeddings, views).
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def save_checkpoint(
    directory: Path,
    state: LoopState,
    *,
    model_state: dict[str, torch.Tensor],
    best_state: dict[str, torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> Path:
    """Write ``directory/epoch-N`` atomically and drop older checkpoints; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"epoch-{state.epoch}"
    staging = directory / f".epoch-{state.epoch}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        save_file(_contiguous(model_state), str(staging / MODEL_FILE))
        if best_state is not None:
            save_file(_contiguous(best_state), str(staging / BEST_FILE))
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            staging / OPTIMIZER_FILE,
        )
        torch.save({"torch": torch.get_rng_state()}, staging / RNG_FILE)
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


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint folder (hidden temporary folders are never complete)."""
    found = [p for p in directory.glob("epoch-*") if p.is_dir() and p.name[6:].isdigit()]
    return max(found, key=lambda p: int(p.name[6:]), default=None)


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
    )


def numpy_state(generator: np.random.Generator) -> dict[str, Any]:
    """The generator's state as plain JSON (PCG64 state is a few integers)."""
    return dict(generator.bit_generator.state)


def restore_numpy(generator: np.random.Generator, state: dict[str, Any]) -> None:
    generator.bit_generator.state = state
