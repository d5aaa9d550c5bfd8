"""The training loop: one function, read top to bottom.

Built on Hugging Face Accelerate, so the same code runs on a laptop CPU, one GPU, or several GPUs
and nodes under ``accelerate launch``. Everything the ethics features need to attach is a small
named piece the loop calls: ``loss_terms`` add to the loss (fairness penalties), ``grad_transforms``
run between backward and the optimizer step (clipping is one; DP noise would be another), and the
batch order comes from a plain function (length grouping, group-balanced sampling).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm.auto import tqdm

from ethos.config import TrainConfig
from ethos.training.batching import (
    Encoded,
    iterate,
    length_grouped_order,
    sequential_order,
    shuffled_order,
)
from ethos.training.metrics import classification_metrics

LossTerm = Callable[[dict[str, torch.Tensor], torch.Tensor, np.ndarray], torch.Tensor]
GradTransform = Callable[[torch.nn.Module], None]


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


def mixed_precision_for(precision: str) -> str:
    """'auto' picks bf16 (or fp16) autocast on GPUs that support it and full fp32 on CPUs."""
    if precision == "fp32":
        return "no"
    if precision in ("bf16", "fp16"):
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def class_weight_tensor(
    config: TrainConfig, labels: np.ndarray, n_classes: int
) -> torch.Tensor | None:
    """'balanced' weights each class by n / (k * count), as scikit-learn does."""
    if config.class_weights == "none":
        return None
    if config.class_weights == "balanced":
        counts = np.bincount(labels, minlength=n_classes).astype(float)
        return torch.tensor(len(labels) / (n_classes * np.maximum(counts, 1.0)), dtype=torch.float)
    return torch.tensor(config.class_weights, dtype=torch.float)


def clip_gradients(max_norm: float, accelerator: Accelerator) -> GradTransform:
    def clip(model: torch.nn.Module) -> None:
        accelerator.clip_grad_norm_(model.parameters(), max_norm)

    return clip


@torch.no_grad()
def predict_proba(
    model: torch.nn.Module, data: Encoded, *, batch_size: int, pad_id: int
) -> np.ndarray:
    """Class probabilities for every example, in the data's own order."""
    model.eval()
    device = next(model.parameters()).device
    n_labels = int(model.config.num_labels)  # type: ignore[union-attr,arg-type]
    out = np.zeros((len(data), n_labels), dtype=np.float64)
    for indices, batch in iterate(data, sequential_order(data.lengths(), batch_size), pad_id):
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits.float()
        out[indices] = torch.softmax(logits, dim=-1).cpu().numpy()
    return out


def _evaluate(
    model: torch.nn.Module,
    data: Encoded,
    label_names: Sequence[str],
    config: TrainConfig,
    pad_id: int,
) -> dict[str, Any]:
    probabilities = predict_proba(model, data, batch_size=config.eval_batch_size, pad_id=pad_id)
    metrics = classification_metrics(data.labels, probabilities, label_names)
    picked = probabilities[np.arange(len(data)), data.labels]
    metrics["loss"] = float(-np.log(np.clip(picked, 1e-12, None)).mean())
    return metrics


def _improved(metric: str, new: dict[str, Any], best: dict[str, Any]) -> bool:
    if not best:
        return True
    if new.get(metric) is None:
        return False
    if metric == "loss":
        return bool(new["loss"] < best["loss"])
    return bool(new[metric] > (best.get(metric) or -math.inf))


def train_loop(
    model: torch.nn.Module,
    train: Encoded,
    validation: Encoded,
    config: TrainConfig,
    *,
    label_names: Sequence[str],
    pad_id: int,
    seed: int,
    loss_terms: Sequence[LossTerm] = (),
    grad_transforms: Sequence[GradTransform] = (),
    quiet: bool = False,
) -> LoopResult:
    """Fine-tune ``model`` in place; it ends holding the weights of the best validation epoch."""
    accelerator = Accelerator(
        mixed_precision=mixed_precision_for(config.precision),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        cpu=not torch.cuda.is_available(),
    )
    generator = np.random.default_rng(seed)
    torch.manual_seed(seed)

    # Optimiser: AdamW without decay on biases and LayerNorm weights; linear warm-up then decay.
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    batches_per_epoch = math.ceil(len(train) / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation_steps)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    warmup_steps = int(config.warmup_ratio * total_steps)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    weights = class_weight_tensor(config, train.labels, len(label_names))
    if weights is not None:
        weights = weights.to(accelerator.device)
    transforms = list(grad_transforms)
    if config.max_grad_norm is not None:
        transforms.insert(0, clip_gradients(config.max_grad_norm, accelerator))

    result = LoopResult()
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    lengths = train.lengths()
    progress = tqdm(total=total_steps, disable=quiet, desc="training", unit="step", leave=False)
    started = time.perf_counter()
    epoch = 0
    while result.optimizer_steps < total_steps:
        epoch += 1
        model.train()
        if config.group_by_length:
            order = length_grouped_order(lengths, config.batch_size, generator)
        else:
            order = shuffled_order(len(train), config.batch_size, generator)
        for indices, batch in iterate(train, order, pad_id):
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            labels = batch.pop("labels")
            with accelerator.accumulate(model), accelerator.autocast():
                logits = model(**batch).logits.float()
                loss = F.cross_entropy(logits, labels, weight=weights)
                for term in loss_terms:
                    loss = loss + term(batch, logits, indices)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    for transform in transforms:
                        transform(model)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            result.examples_seen += len(indices)
            result.tokens_seen += int(batch["attention_mask"].sum())
            if accelerator.sync_gradients:
                result.optimizer_steps += 1
                elapsed = time.perf_counter() - started
                progress.set_postfix(
                    loss=f"{loss.item():.4f}", ex_s=f"{result.examples_seen / elapsed:.0f}"
                )
                progress.update(1)
                if result.optimizer_steps >= total_steps:
                    break

        # Evaluate once per epoch; keep the best weights for early stopping and the final model.
        metrics = _evaluate(
            accelerator.unwrap_model(model), validation, label_names, config, pad_id
        )
        metrics["epoch"] = epoch
        metrics["optimizer_steps"] = result.optimizer_steps
        result.history.append(metrics)
        watched = config.early_stopping.metric if config.early_stopping else "macro_f1"
        if _improved(watched, metrics, result.best_validation):
            result.best_validation, result.best_epoch, stale = metrics, epoch, 0
            best_state = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
        else:
            stale += 1
        if config.early_stopping and stale >= config.early_stopping.patience:
            result.stopped_early = True
            break
    progress.close()
    result.train_seconds = time.perf_counter() - started
    unwrapped = accelerator.unwrap_model(model)
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    unwrapped.eval()
    return result
