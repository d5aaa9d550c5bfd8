"""An in-training fairness penalty: a differentiable gap between groups, added to the loss.

The audit measures demographic parity and equalized odds on hard decisions, which have no
gradient. On each batch the penalty measures the same gaps on *soft* decisions (the predicted
probability of the positive class): the spread, largest minus smallest, of the mean positive
probability across the groups in the batch (demographic parity), or the larger of those spreads
among true negatives and among true positives (equalized odds: the FPR and TPR gaps). Training on
``loss + lambda * gap`` trades accuracy for a smaller gap; batches come from
:func:`group_balanced_order` so every sizeable group is present to be compared. Written by hand:
fairlearn's reductions retrain a scikit-learn estimator many times and have no PyTorch path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ethos.config import RunConfig
from ethos.data import Dataset
from ethos.training.ethics_options import fairness_record, mitigation_groups
from ethos.training.strategies import Plan, Step, Strategy

PenaltyTerm = Callable[[dict[str, torch.Tensor], torch.Tensor, np.ndarray], torch.Tensor]

MIN_CELL = 2
"""Members of a group (per true label for equalized odds) a batch needs before the group's mean
enters the gap; one example's probability is noise, not a rate."""


def soft_gap(
    positive: torch.Tensor, groups: torch.Tensor, labels: torch.Tensor, constraint: str
) -> torch.Tensor:
    """The batch's soft demographic-parity or equalized-odds gap (0 when nothing to compare)."""
    if constraint == "demographic_parity":
        return _spread(positive, groups)
    gaps = [_spread(positive[labels == y], groups[labels == y]) for y in (0, 1)]
    return torch.maximum(gaps[0], gaps[1])


def _spread(positive: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    means = []
    for code in torch.unique(groups):
        members = groups == code
        if int(members.sum()) >= MIN_CELL:
            means.append(positive[members].mean())
    if len(means) < 2:
        return positive.sum() * 0.0  # keeps the graph (and the device) without moving the loss
    stacked = torch.stack(means)
    return stacked.max() - stacked.min()


def fairness_penalty(
    group_codes: np.ndarray, labels: np.ndarray, *, constraint: str, weight: float
) -> PenaltyTerm:
    """A loss term for the loop: ``weight`` times the soft gap of the batch's training rows."""
    codes = torch.as_tensor(group_codes, dtype=torch.long)
    truth = torch.as_tensor(labels, dtype=torch.long)

    def term(
        batch: dict[str, torch.Tensor], scores: torch.Tensor, indices: np.ndarray
    ) -> torch.Tensor:
        positive = torch.softmax(scores.float(), dim=-1)[:, 1]
        rows = torch.as_tensor(indices, dtype=torch.long)
        gap = soft_gap(
            positive, codes[rows].to(positive.device), truth[rows].to(positive.device), constraint
        )
        return weight * gap

    return term


def group_balanced_order(
    group_codes: np.ndarray, batch_size: int, generator: np.random.Generator
) -> list[np.ndarray]:
    """Batches in which every group keeps its share: a group of ``n_g`` rows appears in every
    batch once ``n_g >= n / batch_size``, and smaller groups in as many batches as they can.

    Each group is shuffled and its members spread evenly over the epoch (systematic sampling with
    a random offset), so batch composition mirrors the data instead of the luck of a shuffle.
    """
    n = len(group_codes)
    position = np.empty(n, dtype=np.float64)
    for code in np.unique(group_codes):
        members = np.flatnonzero(group_codes == code)
        members = members[generator.permutation(len(members))]
        position[members] = (np.arange(len(members)) + generator.random()) / len(members)
    order = np.argsort(position, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return [batches[i] for i in generator.permutation(len(batches))]


class FairnessPenalty(Strategy):
    """``train.fairness.method: penalty``: group-balanced batches, and ``lambda`` times the
    batch's soft gap added to its loss."""

    name = "fairness_penalty"
    records = ("mitigation.fairness",)

    def __init__(self, codes: np.ndarray, term: PenaltyTerm, record: dict[str, Any]) -> None:
        self.codes = codes
        self.term = term
        self.record = record

    @classmethod
    def from_config(
        cls, config: RunConfig, train: Dataset, tokenizer: Any
    ) -> FairnessPenalty | None:
        fairness = config.train.fairness
        if fairness is None or fairness.method != "penalty":
            return None
        _, values = mitigation_groups(config, train)
        codes = np.unique(values, return_inverse=True)[1]
        term = fairness_penalty(
            codes, train.labels, constraint=fairness.constraint, weight=fairness.lambda_
        )
        return cls(codes, term, fairness_record(config))

    def prepare(self, plan: Plan) -> None:
        codes, batch_size = self.codes, plan.config.batch_size

        def balanced(generator: np.random.Generator) -> list[np.ndarray]:
            return group_balanced_order(codes, batch_size, generator)

        plan.batch_order = balanced

    def loss(self, step: Step, loss: Any) -> Any:
        return loss + self.term(step.batch, step.scores, step.indices)

    def manifest(self) -> dict[str, Any]:
        return {"fairness": self.record}
