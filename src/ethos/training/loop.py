"""The training loop: one function, read top to bottom.

Built on Hugging Face Accelerate, so the same code runs on a laptop CPU, one GPU, or several GPUs
and nodes under ``accelerate launch``. The ethics features (DP-SGD, reweighing, the fairness
penalty, augmentation, embedding attacks) are strategies (:mod:`ethos.training.strategies`) the
loop calls at four named points: ``prepare`` before the first batch (they may change the
example weights, the batch order, each epoch's examples, the model and optimizer, and the
gradient clip, all fields of one :class:`Plan`), ``loss`` and ``after_backward`` per batch, and
``finish`` at the end. The batch order is a plain function (length grouping by default).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration
from tqdm.auto import tqdm

from ethos.config import TrainConfig
from ethos.errors import ModelError
from ethos.models.inference import class_probabilities
from ethos.training.batching import (
    Encoded,
    collate,
    length_grouped_order,
    shuffled_order,
)
from ethos.training.checkpoint import (
    Checkpoint,
    LoopState,
    checkpoint_name,
    numpy_state,
    restore_numpy,
    save_checkpoint,
)
from ethos.training.distributed import (
    Processes,
    any_process,
    check_launch,
    gathered,
    launched,
    share,
)
from ethos.training.interrupt import Interrupted, StopRequest
from ethos.training.metrics import classification_metrics
from ethos.training.strategies import Plan, Step, Strategy


@dataclass
class LoopResult:
    """What the loop did: per-evaluation history, the best validation metrics, and counts."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_validation: dict[str, Any] = field(default_factory=dict)
    best_epoch: int = 0
    optimizer_steps: int = 0
    tokens_seen: int = 0
    examples_seen: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False
    resumed_from_epoch: int | None = None
    privacy: dict[str, Any] | None = None
    processes: int = 1
    """Training processes of an `accelerate launch` (each trained its share of every batch)."""


def mixed_precision_for(precision: str) -> str:
    """'auto' picks bf16 (or fp16) autocast on GPUs that support it and full fp32 on CPUs."""
    if precision == "fp32":
        return "no"
    if precision in ("bf16", "fp16"):
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def parameter_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: no decay on biases and LayerNorm weights; a LoRA run's head at its own rate.

    Under peft the trainable copy of the task head sits in a ``modules_to_save`` wrapper, which is
    how it is told apart from the adapters.
    """
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            no_decay = param.ndim < 2 or "LayerNorm" in name
            head = config.peft is not None and "modules_to_save" in name
            groups.setdefault((no_decay, head), []).append(param)
    result = []
    for (no_decay, head), params in sorted(groups.items()):
        group: dict[str, Any] = {
            "params": params,
            "weight_decay": 0.0 if no_decay else config.weight_decay,
        }
        if head and config.peft is not None:
            group["lr"] = config.peft.head_rate(config.learning_rate)
        result.append(group)
    return result


@dataclass(frozen=True)
class Objective:
    """What the task asks of the loop: a loss from model outputs, and how to judge an epoch.

    ``loss(outputs, labels)`` returns one loss per example (the loop reduces them, weighted when
    examples carry weights, and DP-SGD needs them apart) and the scores extra ``loss_terms`` see
    (classification logits); ``evaluate(model)`` returns validation metrics, of which ``watch``
    picks the best epoch (higher is better unless ``lower_is_better``).
    """

    loss: Callable[[Any, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    evaluate: Callable[[torch.nn.Module], dict[str, Any]]
    watch: str
    lower_is_better: bool = False
    collate: Callable[[Any, np.ndarray, int], dict[str, torch.Tensor]] | None = None
    """Pads the rows ``indices`` of the training data into one batch with its ``labels`` (None:
    :func:`~ethos.models.encoding.collate`, one text per row): a multiple-choice batch is
    [questions, options, tokens], a causal LM's labels are token ids."""


def classification_objective(
    validation: Encoded,
    label_names: Sequence[str],
    config: TrainConfig,
    *,
    pad_id: int,
) -> Objective:
    """Cross-entropy per example; validation accuracy, macro-F1, AUROC, loss.

    Class weights are example weights (``train.class_weights``), applied by the loop.
    """

    def loss(outputs: Any, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = outputs.logits.float()
        return F.cross_entropy(logits, labels, reduction="none"), logits

    def evaluate(model: torch.nn.Module) -> dict[str, Any]:
        probabilities = class_probabilities(
            model, validation, batch_size=config.eval_batch_size, pad_id=pad_id
        )
        metrics = classification_metrics(validation.labels, probabilities, label_names)
        picked = probabilities[np.arange(len(validation)), validation.labels]
        metrics["loss"] = float(-np.log(np.clip(picked, 1e-12, None)).mean())
        return metrics

    watched = config.early_stopping.metric if config.early_stopping else "macro_f1"
    return Objective(loss, evaluate, watched, lower_is_better=watched == "loss")


def _improved(objective: Objective, new: dict[str, Any], best: dict[str, Any]) -> bool:
    if not best:
        return True
    value = new.get(objective.watch)
    if value is None:
        return False
    previous = best.get(objective.watch)
    if previous is None:
        return True
    return bool(value < previous) if objective.lower_is_better else bool(value > previous)


def class_weight_vector(
    config: TrainConfig, labels: np.ndarray, n_classes: int
) -> np.ndarray | None:
    """``train.class_weights`` as one weight per training example (reweighing multiplies in).

    'balanced' weights each class by n / (k * count), as scikit-learn does.
    """
    if config.class_weights == "none":
        return None
    if config.class_weights == "balanced":
        counts = np.bincount(labels, minlength=n_classes).astype(float)
        per_class = len(labels) / (n_classes * np.maximum(counts, 1.0))
    else:
        per_class = np.asarray(config.class_weights, dtype=np.float64)
    # Rounded to float32 before reweighing multiplies in: the weights every run so far used.
    return per_class.astype(np.float32)[labels].astype(np.float64)


def train_loop(
    model: torch.nn.Module,
    train: Encoded,
    validation: Encoded,
    config: TrainConfig,
    *,
    label_names: Sequence[str],
    pad_id: int,
    seed: int,
    objective: Objective | None = None,
    strategies: Sequence[Strategy] = (),
    checkpoint_dir: Path | None = None,
    resume_from: Checkpoint | None = None,
    quiet: bool = False,
) -> LoopResult:
    """Fine-tune ``model`` in place; it ends holding the weights of the best validation epoch.

    The ethics features are ``strategies`` (:mod:`ethos.training.strategies`; built from a config
    by :func:`ethos.training.mitigation.build_strategies`): before the first batch each may
    change the :class:`Plan` (example weights, batch order, each epoch's examples, the model and
    optimizer, the gradient clip); per batch each may change the loss and add gradient after the
    backward pass; at the end each records what it measured. The loop has no other branch on them.
    With ``checkpoint_dir`` a checkpoint is written after every epoch that is not the last, and
    Ctrl-C stops at the next step boundary with a checkpoint of it (:class:`Interrupted`);
    ``resume_from`` (a loaded checkpoint of the same run) continues exactly where it was taken.
    """
    # Accumulation is counted per epoch here, not by Accelerate: its counter runs on across
    # epochs (without a prepared DataLoader it never sees one end), so an epoch whose batch count
    # was not a multiple of the accumulation steps carried a count and half-summed gradients
    # into the next epoch that no checkpoint held, and a resumed run grouped its batches
    # differently from an uninterrupted one.
    accumulate = config.gradient_accumulation_steps
    processes = launched()
    check_launch([strategy.name for strategy in strategies], processes)
    accelerator = Accelerator(
        mixed_precision=mixed_precision_for(config.precision),
        cpu=not torch.cuda.is_available(),
        # The loop splits each batch over the processes itself (distributed.share), so one
        # optimizer step is one schedule step; otherwise Accelerate steps the schedule once per
        # process and a launch of N decays the learning rate N times too fast.
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )
    generator = np.random.default_rng(seed)
    torch.manual_seed(seed)
    weights = None
    if objective is None:
        weights = class_weight_vector(config, train.labels, len(label_names))
        objective = classification_objective(validation, label_names, config, pad_id=pad_id)
    # Fused: one kernel over all parameters instead of a per-tensor loop (27 ms against 140 ms
    # a step for MiniLM on CPU, benchmarks/results/train_throughput.json; the Trainer's default
    # too). It changed every run's weights in the last bits when it came in (issue 20); resumed
    # runs stay bit-identical to uninterrupted ones (tests/training/test_checkpoint_resume.py).
    optimizer: torch.optim.Optimizer = torch.optim.AdamW(
        parameter_groups(model, config), lr=config.learning_rate, fused=True
    )
    total_steps = planned_steps(config, len(train))
    schedule = linear_schedule(total_steps, int(config.warmup_ratio * total_steps))

    # The strategies set up, before a checkpoint is loaded into what they wrap: each may turn
    # the plan's knobs (DP wraps model and optimizer and draws Poisson batches, the penalty
    # balances groups, augmentation perturbs each epoch's texts, reweighing weighs examples).
    core = model  # the plain model: state dicts, evaluation and the result come from it
    plan = Plan(
        config=config,
        train=train,
        pad_id=pad_id,
        device=accelerator.device,
        total_steps=total_steps,
        core=core,
        model=core,
        optimizer=optimizer,
        weights=weights,
        max_grad_norm=config.max_grad_norm,
    )
    for strategy in strategies:
        strategy.prepare(plan)
    model, optimizer = plan.model, plan.optimizer
    example_weights = (
        None if plan.weights is None else torch.as_tensor(plan.weights, dtype=torch.float32)
    )

    result = LoopResult(processes=processes.world)
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    epoch = 0  # epochs finished
    skip = 0  # batches of the next epoch a mid-epoch checkpoint had already trained
    if resume_from is not None:
        _check_processes(resume_from, processes)
        epoch, skip, stale, best_state = _restore(resume_from, core, optimizer, result, total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    if resume_from is not None:
        _restore_schedule(resume_from, optimizer, scheduler)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    def save(batches_done: int, numpy_rng: dict[str, Any]) -> Path:
        assert checkpoint_dir is not None
        # Every process's dropout generator: each drew for its own share of the batches.
        torch_states = gathered(torch.get_rng_state(), processes)
        state = LoopState(
            epoch=epoch,
            optimizer_steps=result.optimizer_steps,
            examples_seen=result.examples_seen,
            tokens_seen=result.tokens_seen,
            train_seconds=time.perf_counter() - started,
            history=result.history,
            best_validation=result.best_validation,
            best_epoch=result.best_epoch,
            stale=stale,
            numpy_rng=numpy_rng,
            total_steps=total_steps,
            batches_done=batches_done,
            processes=processes.world,
        )
        if not processes.main:  # the main process alone writes; the states are the same
            return checkpoint_dir / checkpoint_name(state)
        same = batches_done == 0 and result.best_epoch == epoch  # best is the model: once
        return save_checkpoint(
            checkpoint_dir,
            state,
            model_state=core.state_dict(),
            best_state=None if same else best_state,
            optimizer=optimizer,
            scheduler=scheduler,
            torch_rng_per_process=torch_states if processes.several else None,
        )

    progress = tqdm(
        total=total_steps,
        initial=result.optimizer_steps,
        disable=quiet,
        desc=" + ".join(["training", *(strategy.name for strategy in strategies)]),
        unit="step",
        leave=False,
    )
    started = time.perf_counter() - result.train_seconds
    examples_at_start = result.examples_seen
    if resume_from is not None:
        # Last, so that nothing between here and the first batch draws from them.
        _restore_random(resume_from, generator, processes)
    stop = StopRequest(active=checkpoint_dir is not None, quiet=quiet or not processes.main)
    with stop, progress:
        while result.optimizer_steps < total_steps:
            epoch_rng = numpy_state(generator)
            model.train()
            data = train if plan.epoch_data is None else plan.epoch_data(epoch + 1, generator)
            if plan.batch_order is not None:
                order = plan.batch_order(generator)
            elif config.group_by_length:
                order = length_grouped_order(data.lengths(), config.batch_size, generator)
            else:
                order = shuffled_order(len(data), config.batch_size, generator)
            for position, indices in enumerate(order):
                if position < skip:
                    continue  # trained before the interruption this run resumed from
                sync, group = accumulation_step(position, len(order), accumulate)
                mine, factor = share(indices, processes)
                batch = {
                    k: v.to(accelerator.device)
                    for k, v in (objective.collate or collate)(data, mine, pad_id).items()
                }
                labels = batch.pop("labels")
                weighting = _Weighting(example_weights, mine, indices, factor)
                with nullcontext() if sync else accelerator.no_sync(model), accelerator.autocast():
                    per_example, scores = objective.loss(model(**batch), labels)
                    step = Step(
                        model=model,
                        batch=batch,
                        labels=labels,
                        indices=mine,
                        per_example=weighting(per_example),
                        scores=scores,
                        loss_of=_batch_loss(objective, weighting, group),
                    )
                    loss: Any = step.per_example.mean()
                    for strategy in strategies:
                        loss = strategy.loss(step, loss)
                    accelerator.backward(loss if group == 1 else loss / group)
                    for strategy in strategies:
                        strategy.after_backward(step)
                result.examples_seen += len(indices)
                result.tokens_seen += _tokens(batch, data, indices, processes)
                if not sync:
                    continue
                if plan.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), plan.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                result.optimizer_steps += 1
                if not quiet:
                    elapsed = time.perf_counter() - started - result.train_seconds
                    rate = (result.examples_seen - examples_at_start) / max(elapsed, 1e-9)
                    progress.set_postfix(loss=f"{loss.item():.4f}", ex_s=f"{rate:.0f}")
                    progress.update(1)
                stopping = any_process(stop.requested, processes)
                if stopping and result.optimizer_steps < total_steps:
                    raise Interrupted(save(position + 1, epoch_rng))
                if result.optimizer_steps >= total_steps:
                    break
            skip = 0
            epoch += 1

            # Evaluate once per epoch; keep the best weights for early stopping and the final
            # model.
            metrics = _evaluated(objective, core, epoch, result)
            if _improved(objective, metrics, result.best_validation):
                result.best_validation, result.best_epoch, stale = metrics, epoch, 0
                best_state = copy.deepcopy(core.state_dict())
            else:
                stale += 1
            if config.early_stopping and stale >= config.early_stopping.patience:
                result.stopped_early = True
                break
            if checkpoint_dir is not None and result.optimizer_steps < total_steps:
                saved = save(0, numpy_state(generator))
                if any_process(stop.requested, processes):
                    raise Interrupted(saved)
    if total_steps == 0 and not result.history:
        # max_steps: 0 trains nothing; the starting weights are still judged on validation, so
        # the run's record (and anything fitted on validation) has the same shape as any run's.
        metrics = _evaluated(objective, core, 0, result)
        result.best_validation, result.best_epoch = metrics, 0
    result.train_seconds = time.perf_counter() - started
    for strategy in strategies:
        strategy.finish(result)
    if best_state is not None:
        core.load_state_dict(best_state)
    core.eval()
    return result


def _evaluated(
    objective: Objective, core: torch.nn.Module, epoch: int, result: LoopResult
) -> dict[str, Any]:
    """The validation metrics after ``epoch`` epochs, appended to the loop's history."""
    metrics = objective.evaluate(core)
    metrics["epoch"] = epoch
    metrics["optimizer_steps"] = result.optimizer_steps
    result.history.append(metrics)
    return metrics


def _batch_loss(
    objective: Objective, weighting: _Weighting, group: int
) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    """The clean step's reduced loss for this batch, for extra passes (adversarial).

    Divided by the accumulation group's size, as the clean loss is, so both passes weigh the
    same in the accumulated gradient.
    """

    def loss(outputs: Any, labels: torch.Tensor) -> torch.Tensor:
        reduced = weighting(objective.loss(outputs, labels)[0]).mean()
        return reduced if group == 1 else reduced / group

    return loss


def planned_steps(config: TrainConfig, n_examples: int) -> int:
    """Optimizer steps in the whole run: every epoch ends with a step, even a short group."""
    batches_per_epoch = math.ceil(n_examples / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation_steps)
    total = max(1, math.ceil(config.epochs * steps_per_epoch))
    return total if config.max_steps is None else min(total, config.max_steps)


def linear_schedule(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up over ``warmup_steps``, then linear decay to 0."""

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return schedule


def accumulation_step(position: int, n_batches: int, accumulate: int) -> tuple[bool, int]:
    """Whether batch ``position`` of an epoch ends its accumulation group, and the group's size.

    Groups start afresh every epoch and the last one may be short, so an epoch boundary (where
    checkpoints are taken) never holds half-summed gradients.
    """
    first = position - position % accumulate
    size = min(accumulate, n_batches - first)
    return position == first + size - 1, size


@dataclass(frozen=True)
class _Weighting:
    """Scales this process's per-example losses so that their mean, averaged over processes,
    is the whole batch's weighted mean (what DP-SGD clips, in one process).

    ``mine`` are this process's rows of the batch ``indices`` (all of them in one process) and
    ``factor`` is :func:`~ethos.training.distributed.share`'s. Example weights are normalised over
    the whole batch, not over the share, so a launch weighs each example as one process does.
    """

    weights: torch.Tensor | None
    mine: np.ndarray
    indices: np.ndarray
    factor: float = 1.0

    def __call__(self, per_example: torch.Tensor) -> torch.Tensor:
        scaled = per_example if self.factor == 1.0 else per_example * self.factor
        if self.weights is None or len(self.mine) == 0:
            return scaled
        w = self.weights[torch.as_tensor(self.mine, dtype=torch.long)].to(per_example.device)
        whole = w if self.mine is self.indices else self.weights[torch.as_tensor(self.indices)]
        return scaled * (w * (len(self.indices) / whole.sum().clamp_min(1e-12)))


def _tokens(
    batch: dict[str, torch.Tensor], data: Encoded, indices: np.ndarray, processes: Processes
) -> int:
    """Non-padding tokens of the whole batch, counted the same in one process or several."""
    if not processes.several:
        return int(batch["attention_mask"].sum())
    return int(sum(_token_count(data.input_ids[i]) for i in indices))


def _token_count(row: Any) -> int:
    """Tokens of one training row: one id list, or (multiple choice) one list per option."""
    if row and isinstance(row[0], list | tuple):
        return sum(len(option) for option in row)
    return len(row)


def _check_processes(checkpoint: Checkpoint, processes: Processes) -> None:
    """A checkpoint continues only with the number of processes that took it: the shares of
    every batch, and each process's dropout generator, depend on it."""
    taken = checkpoint.state.processes
    if taken != processes.world:
        raise ModelError(
            f"checkpoint {checkpoint.path} was taken with {taken} process"
            f"{'es' * (taken != 1)}, and this resume runs {processes.world}",
            hint=f"resume with {taken} process{'es' * (taken != 1)}"
            + (
                f": accelerate launch --multi_gpu --num_processes {taken} -m ethos train --resume"
                " RUN_DIR"
                if taken > 1
                else ": ethos train --resume RUN_DIR (no accelerate launch)"
            ),
        )


def _restore(
    checkpoint: Checkpoint,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    result: LoopResult,
    total_steps: int,
) -> tuple[int, int, int, dict[str, torch.Tensor] | None]:
    """Put model, optimizer and counters back as they were at the checkpoint.

    Returns the epochs finished, the batches of the next epoch already trained, the early
    stopping count and the best weights so far. The schedule and the random generators are put
    back separately, at the points where an uninterrupted run would hold the same state.
    """
    state = checkpoint.state
    if state.total_steps != total_steps:
        raise ModelError(
            f"checkpoint {checkpoint.path} belongs to a run of {state.total_steps} optimizer "
            f"steps, but this configuration makes {total_steps}",
            hint="resume with the run's own config.yaml (ethos train --resume RUN_DIR)",
        )
    try:
        model.load_state_dict(checkpoint.model)
        optimizer.load_state_dict(checkpoint.optimizer)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelError(
            f"checkpoint {checkpoint.path} does not fit this model: {exc}",
            hint="resume with the run's own config.yaml (ethos train --resume RUN_DIR)",
        ) from None
    result.history = list(state.history)
    result.best_validation = dict(state.best_validation)
    result.best_epoch = state.best_epoch
    result.optimizer_steps = state.optimizer_steps
    result.examples_seen = state.examples_seen
    result.tokens_seen = state.tokens_seen
    result.train_seconds = state.train_seconds
    result.resumed_from_epoch = state.epoch
    best = checkpoint.best_model
    if best is None and state.best_epoch > 0:
        best = checkpoint.model  # the newest epoch was the best: stored once
    best_state = None if best is None else {k: v.clone() for k, v in best.items()}
    return state.epoch, state.batches_done, state.stale, best_state


def _restore_schedule(
    checkpoint: Checkpoint, optimizer: torch.optim.Optimizer, scheduler: Any
) -> None:
    """Continue the learning-rate schedule at the checkpoint's step, with the checkpoint's rate.

    Building a LambdaLR sets every group's rate to ``schedule(0)`` times the base rate, and
    loading its state afterwards restores only its step count, not the rates: the first step
    after a resume used to run at the first warm-up step's rate instead of the one the
    uninterrupted run used there (weights a8ca53014b46 instead of 550a4e97c21f in issue 22).
    """
    scheduler.load_state_dict(checkpoint.scheduler)
    for group, rate in zip(optimizer.param_groups, scheduler.get_last_lr(), strict=True):
        group["lr"] = rate


def _restore_random(
    checkpoint: Checkpoint, generator: np.random.Generator, processes: Processes
) -> None:
    """Batch order (numpy) and dropout (torch CPU and CUDA, Python) as they were; under several
    processes each gets its own dropout generator back."""
    restore_numpy(generator, checkpoint.state.numpy_rng)
    per_process = checkpoint.torch_rng_per_process
    torch.set_rng_state(
        checkpoint.torch_rng if per_process is None else per_process[processes.rank]
    )
    cuda = checkpoint.cuda_rng
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    random.setstate(checkpoint.python_rng)
