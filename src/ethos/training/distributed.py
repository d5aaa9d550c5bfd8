"""Several training processes under `accelerate launch`: who writes, and which rows each trains.

`accelerate launch --multi_gpu --num_processes N -m ethos run CONFIG` (or torchrun) starts N
copies of the whole command; each learns its place from the ``RANK`` and ``WORLD_SIZE`` variables
the launcher sets. They read the same data and draw the same batch order (same seed), so every
process knows each global batch; each trains on its own contiguous share of it, and DDP averages
the gradients. Each share's loss is scaled by ``N * share / batch`` so that the average is the
gradient of the whole batch's mean loss, exactly as one process would take it, even when the batch
does not divide evenly. Only the main process (rank 0) writes: the run directory, checkpoints,
ledger entries and the card. The others wait for it and return what it decided
(:func:`shared_by_main`), so a launch produces one run, as one process would.

What cannot be split this way is refused before anything trains (:func:`check_launch`): DP-SGD
would add its noise once per process, and the fairness penalty's group rates would be measured
on each process's share instead of the batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np

from ethos.errors import ConfigError, EthosError

T = TypeVar("T")

#: How long a process waits at a collective step: the others wait there while the main process
#: audits, gates and writes the card, which can take a while on a large test set.
COLLECTIVE_TIMEOUT = timedelta(hours=6)
#: Strategies whose loss or gradient is computed over the whole batch, so that a process's share
#: would measure something else; refused under several processes, named in the message.
NOT_SPLITTABLE = {
    "dp_sgd": "DP-SGD adds its noise on every process (the noise would be added N times, "
    "and its accounting assumes one Poisson-sampled batch)",
    "fairness_penalty": "the fairness penalty measures group rates over the whole batch, "
    "and each process sees only its share",
}


@dataclass(frozen=True)
class Processes:
    """This process's place in a launch: ``rank`` of ``world`` (1 when not launched)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world > 1


def launched() -> Processes:
    """Read from ``RANK`` / ``WORLD_SIZE`` (set by `accelerate launch` and torchrun).

    Read from the environment, not from a process group, so that it can be asked before one
    exists (and costs nothing in a single process).
    """
    try:
        world = int(os.environ.get("WORLD_SIZE") or 1)
        rank = int(os.environ.get("RANK") or 0)
    except ValueError:
        raise EthosError(
            f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} "
            "are not whole numbers",
            hint="start several processes with `accelerate launch`, or unset both",
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise EthosError(f"RANK={rank} does not fit WORLD_SIZE={world}")
    return Processes(rank=rank, world=world)


def start(processes: Processes) -> None:
    """Join the launch's process group (gloo on CPUs, NCCL on GPUs) before the first collective.

    Through Accelerate's state, so the :class:`~accelerate.Accelerator` the loop makes later
    finds the same group; ``cpu`` must be said on a machine without GPUs, or Accelerate treats
    the launch as one process.
    """
    if not processes.several:
        return
    import torch
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available(), timeout=COLLECTIVE_TIMEOUT)


def agree(value: T, processes: Processes) -> T:
    """The main process's ``value``, on every process (a run id, a decision)."""
    if not processes.several:
        return value
    import torch.distributed as dist

    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gathered(value: T, processes: Processes) -> list[T]:
    """Every process's ``value``, in rank order, on every process."""
    if not processes.several:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * processes.world
    dist.all_gather_object(out, value)
    return out


def any_process(flag: bool, processes: Processes) -> bool:
    """True on every process when it is true on one (a Ctrl-C seen by one process stops all)."""
    if not processes.several:
        return flag
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([int(flag)])
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def wait_for_everyone(processes: Processes) -> None:
    if processes.several:
        import torch.distributed as dist

        dist.barrier()


def share(indices: np.ndarray, processes: Processes) -> tuple[np.ndarray, float]:
    """This process's rows of a global batch and the factor its mean loss is scaled by.

    Contiguous shares (``np.array_split``), so a length-grouped batch stays similar in length
    within each share. The factor ``world * len(share) / len(batch)`` makes the averaged
    gradient equal the whole batch's mean-loss gradient. A process left without rows (a batch
    smaller than the launch) still runs one row at factor 0: DDP needs every process's gradient.
    """
    if not processes.several:
        return indices, 1.0
    mine = np.array_split(indices, processes.world)[processes.rank]
    if len(mine) == 0:
        return indices[:1], 0.0
    return mine, processes.world * len(mine) / len(indices)


def check_launch(strategy_names: list[str], processes: Processes) -> None:
    """Refuse, before training, what several processes would silently get wrong."""
    if not processes.several:
        return
    refused = [name for name in strategy_names if name in NOT_SPLITTABLE]
    if refused:
        reasons = "; ".join(NOT_SPLITTABLE[name] for name in refused)
        raise ConfigError(
            f"this run cannot be split over {processes.world} processes: {reasons}",
            hint="train it in one process (plain `ethos run`/`ethos train`, no accelerate "
            "launch), or remove train.privacy / train.fairness from the config",
        )


@dataclass(frozen=True)
class MainFailed:
    """What the main process sends the others when its part raised."""

    message: str
    hint: str | None


def shared_by_main(work: Callable[[], T], processes: Processes) -> T:
    """Run ``work`` on the main process only; the others wait and return its value.

    When the main process fails, the others raise an :class:`EthosError` with its message
    instead of waiting forever.
    """
    if not processes.several:
        return work()
    if processes.main:
        try:
            value = work()
        except BaseException as exc:
            message = exc.message if isinstance(exc, EthosError) else f"{type(exc).__name__}: {exc}"
            hint = exc.hint if isinstance(exc, EthosError) else None
            agree(MainFailed(message, hint), processes)
            raise
        agree(value, processes)
        return value
    received: Any = agree(None, processes)
    if isinstance(received, MainFailed):
        raise EthosError(f"the main process failed: {received.message}", hint=received.hint)
    return received
