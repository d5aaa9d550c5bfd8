"""The pieces of an exact resume, without a model: schedule, accumulation groups, checkpoint
names, and the Ctrl-C deferral. Each once broke (or would break) bit-for-bit resume."""

from __future__ import annotations

import copy
import signal
from pathlib import Path

import pytest
import torch

from ethos.training.checkpoint import Checkpoint, LoopState, checkpoint_name, latest_checkpoint
from ethos.training.interrupt import StopRequest
from ethos.training.loop import (
    _restore_schedule,
    _token_count,
    accumulation_step,
    linear_schedule,
)


def _optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    torch.manual_seed(0)
    return torch.optim.AdamW([torch.nn.Parameter(torch.randn(4))], lr=lr)


def _step(optimizer: torch.optim.Optimizer, scheduler: object) -> None:
    for param in optimizer.param_groups[0]["params"]:
        param.grad = torch.ones_like(param)
    optimizer.step()
    scheduler.step()  # type: ignore[attr-defined]


def _checkpoint(optimizer: torch.optim.Optimizer, scheduler: object) -> Checkpoint:
    return Checkpoint(
        state=None,  # type: ignore[arg-type]
        model={},
        best_model=None,
        optimizer=copy.deepcopy(optimizer.state_dict()),  # state_dict() shares the tensors
        scheduler=copy.deepcopy(scheduler.state_dict()),  # type: ignore[attr-defined]
        torch_rng=torch.get_rng_state(),
        python_rng=None,
        path=Path("unused"),
    )


@pytest.mark.parametrize("steps_before", [1, 2, 5])
def test_a_restored_schedule_uses_the_uninterrupted_rate(steps_before: int) -> None:
    # The loop rebuilds the LambdaLR on an optimizer that already holds the checkpoint's state;
    # building it resets every group's rate to schedule(0), which the first resumed step used.
    schedule = linear_schedule(total_steps=10, warmup_steps=2)
    optimizer = _optimizer()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    for _ in range(steps_before):
        _step(optimizer, scheduler)
    saved = _checkpoint(optimizer, scheduler)
    weights = optimizer.param_groups[0]["params"][0].detach().clone()
    expected_rate = optimizer.param_groups[0]["lr"]
    _step(optimizer, scheduler)
    expected = optimizer.param_groups[0]["params"][0].detach().clone()

    again = _optimizer()
    with torch.no_grad():
        again.param_groups[0]["params"][0].copy_(weights)
    again.load_state_dict(saved.optimizer)
    rebuilt = torch.optim.lr_scheduler.LambdaLR(again, schedule)
    assert again.param_groups[0]["lr"] != expected_rate  # what the bug trained with
    _restore_schedule(saved, again, rebuilt)
    assert again.param_groups[0]["lr"] == expected_rate
    _step(again, rebuilt)
    assert torch.equal(again.param_groups[0]["params"][0], expected)


@pytest.mark.parametrize(
    ("n_batches", "accumulate", "syncs", "sizes"),
    [
        (5, 1, [0, 1, 2, 3, 4], [1, 1, 1, 1, 1]),
        (5, 2, [1, 3, 4], [2, 2, 2, 2, 1]),
        (7, 3, [2, 5, 6], [3, 3, 3, 3, 3, 3, 1]),
        (2, 4, [1], [2, 2]),
    ],
)
def test_accumulation_groups_restart_every_epoch_and_the_last_may_be_short(
    n_batches: int, accumulate: int, syncs: list[int], sizes: list[int]
) -> None:
    got = [accumulation_step(p, n_batches, accumulate) for p in range(n_batches)]
    assert [p for p, (sync, _) in enumerate(got) if sync] == syncs
    assert [size for _, size in got] == sizes


def _state(epoch: int, batches_done: int) -> LoopState:
    return LoopState(
        epoch=epoch,
        optimizer_steps=0,
        examples_seen=0,
        tokens_seen=0,
        train_seconds=0.0,
        history=[],
        best_validation={},
        best_epoch=0,
        stale=0,
        numpy_rng={},
        total_steps=1,
        batches_done=batches_done,
    )


def test_checkpoint_names_rank_by_progress(tmp_path: Path) -> None:
    assert checkpoint_name(_state(2, 0)) == "epoch-2"
    assert checkpoint_name(_state(2, 5)) == "epoch-3-batch-5"  # 5 batches into epoch 3
    for name in ("epoch-1", "epoch-2-batch-7", "epoch-2", "epoch-3-batch-2", ".epoch-4.tmp-1"):
        (tmp_path / name).mkdir()
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch-3-batch-2"
    (tmp_path / "epoch-3-batch-2").rmdir()
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch-2"
    assert latest_checkpoint(tmp_path / "missing") is None


def test_the_first_ctrl_c_is_deferred_and_the_second_is_not() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler in this process")
    with StopRequest(active=True, quiet=True) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with StopRequest(active=False, quiet=True), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_a_launch_counts_the_tokens_of_every_option_of_a_multiple_choice_row() -> None:
    """Under several processes tokens are counted from the rows (each process sees a share of
    the batch): one id list per text, one per option for a multiple-choice question."""
    assert _token_count([101, 7, 8, 102]) == 4
    assert _token_count([[101, 7, 102], [101, 7, 8, 9, 102], [101, 102]]) == 10
    assert _token_count([]) == 0
