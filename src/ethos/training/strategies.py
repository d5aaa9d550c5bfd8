"""The one protocol through which privacy, fairness and adversarial training enter the loop.

A strategy is one training-time mitigation (reweighing, the fairness penalty, augmentation,
embedding attacks, DP-SGD). The loop calls each at four points and nowhere else:

* ``prepare(plan)`` once, before the first batch: it may turn the knobs of the :class:`Plan`
  (example weights, batch order, each epoch's examples, the model and optimizer the loop steps,
  the gradient clip);
* ``loss(step, loss)`` per batch, after the forward pass: the loss to backpropagate;
* ``after_backward(step)`` per batch, after the backward pass: extra gradient (an attack);
* ``finish(result)`` once, after the last step: take off what ``prepare`` attached and write
  what was measured (the epsilon spent) into the loop's result.

``manifest()`` returns what the run records about it in ``manifest.json``'s ``mitigation``
section, and ``records`` declares every manifest entry it writes, so one test can hold every
registered strategy to the same contract (tests/training/test_training_strategies.py). The
registry that builds strategies from a config is :data:`ethos.training.mitigation.STRATEGIES`;
a new mitigation is one module with a ``Strategy`` and one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch

from ethos.config import TrainConfig
from ethos.training.batching import Encoded

if TYPE_CHECKING:
    from ethos.config import RunConfig
    from ethos.data import Dataset
    from ethos.training.loop import LoopResult

BatchOrder = Callable[[np.random.Generator], list[np.ndarray]]
"""Draws one epoch's batches (arrays of training-example indices) from the loop's generator."""
EpochData = Callable[[int, np.random.Generator], Encoded]
"""The training examples for an epoch (augmentation replaces some texts each epoch)."""


@dataclass
class Plan:
    """What the loop trains with, as the strategies leave it before the first batch.

    The loop fills every field from its arguments and the config, calls each strategy's
    ``prepare`` in turn, and then trains with what the second block holds.
    """

    # Facts of the run: read, never replaced.
    config: TrainConfig
    train: Encoded
    pad_id: int
    device: torch.device
    total_steps: int
    core: torch.nn.Module
    """The plain model: hooks on its layers, state dicts and evaluation use it."""

    # The knobs a strategy may turn.
    model: torch.nn.Module
    """What the loop runs forward and backward (DP: Opacus's per-example wrapper of ``core``)."""
    optimizer: torch.optim.Optimizer
    """What steps the weights (DP: the clipping, noising wrapper of the AdamW the loop built)."""
    weights: np.ndarray | None
    """One weight per training example, or None (class weights; reweighing multiplies in)."""
    batch_order: BatchOrder | None = None
    """None: the loop's own order (length-grouped or shuffled batches of ``batch_size``)."""
    epoch_data: EpochData | None = None
    """None: the same training examples every epoch."""
    max_grad_norm: float | None = None
    """The clip of each step's summed gradient (DP: None, it clips every example's instead)."""


@dataclass(frozen=True)
class Step:
    """One batch after its forward pass: what ``loss`` and ``after_backward`` see."""

    model: torch.nn.Module
    batch: dict[str, torch.Tensor]
    """The model inputs (labels apart)."""
    labels: torch.Tensor
    indices: np.ndarray
    """The training-example index of each row."""
    per_example: torch.Tensor
    """Per-example losses, weighted so that their mean is the batch loss (DP clips these)."""
    scores: torch.Tensor
    """What the objective scores the examples with (classification: the logits)."""
    loss_of: Callable[[Any, torch.Tensor], torch.Tensor]
    """The batch loss of another forward pass's outputs, scaled as the clean loss is (for the
    accumulation group), so an extra pass weighs the same in the gradient."""


@runtime_checkable
class Strategy(Protocol):
    """A training-time mitigation. Every method does nothing by default: subclass and override
    what the mitigation needs (most need two)."""

    name: ClassVar[str]
    """Its key in the registry (:data:`ethos.training.mitigation.STRATEGIES`)."""
    records: ClassVar[tuple[str, ...]]
    """The manifest entries it writes, as paths: ``mitigation.<key>`` for what ``manifest``
    returns, ``training.<field>`` for what ``finish`` writes into the loop's result."""

    def prepare(self, plan: Plan) -> None:
        """Once, before the first batch (and before a resumed run's checkpoint is loaded)."""

    def loss(self, step: Step, loss: Any) -> Any:
        """The loss to backpropagate for this batch, given the loss so far."""
        return loss

    def after_backward(self, step: Step) -> None:
        """After the batch's backward pass, before the optimizer step: add extra gradient."""

    def finish(self, result: LoopResult) -> None:
        """After the last step: remove what ``prepare`` attached; record measurements."""

    def manifest(self) -> dict[str, Any]:
        """Its entries in ``manifest.json``'s ``mitigation`` section (key: entry)."""
        return {}


Build = Callable[["RunConfig", "Dataset", Any], "Strategy | None"]
"""``(config, training rows, tokenizer) -> strategy``, or None when the config does not ask for
it. The config's data section is resolved, and :func:`check_ethics_options` has passed."""
