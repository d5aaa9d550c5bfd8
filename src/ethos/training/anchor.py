"""``train.l2_to_start``: an L2 pull toward the weights training started from.

A child retrained from its parent on a few hundred feedback rows can drift far from what the
parent learned on thousands (catastrophic forgetting). Replaying some of the parent's rows is one
remedy (``ethos retrain --replay``); this is the other cheap one: ``loss + lambda/2 * ||theta -
theta_parent||^2`` over the trainable weights, the isotropic special case of EWC (whose Fisher
weighting needs the parent's data and a pass over it, which a feedback retrain may not have).
"""

from __future__ import annotations

from typing import Any

import torch

from ethos.config import RunConfig
from ethos.data import Dataset
from ethos.training.strategies import Plan, Step, Strategy


class StartAnchor(Strategy):
    """Adds ``weight / 2`` times the squared distance of the trainable weights from where they
    started to every batch's loss."""

    name = "l2_to_start"
    records = ("mitigation.l2_to_start",)

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.start: list[tuple[torch.nn.Parameter, torch.Tensor]] = []

    @classmethod
    def from_config(cls, config: RunConfig, train: Dataset, tokenizer: Any) -> StartAnchor | None:
        weight = config.train.l2_to_start
        return cls(float(weight)) if weight else None

    def prepare(self, plan: Plan) -> None:
        # Before a resumed run's checkpoint is loaded: the anchor is the run's starting point.
        self.start = [(p, p.detach().clone()) for p in plan.core.parameters() if p.requires_grad]

    def loss(self, step: Step, loss: Any) -> Any:
        distance = sum(((p - p0.to(p.device)) ** 2).sum() for p, p0 in self.start)
        return loss + 0.5 * self.weight * distance

    def finish(self, result: Any) -> None:
        self.start = []

    def manifest(self) -> dict[str, Any]:
        return {"l2_to_start": {"weight": self.weight, "norm": "squared L2 of trainable weights"}}
