"""Reweighing (Kamiran & Calders 2012): example weights that make label and group independent.

A group whose members rarely carry the favourable label in the training data teaches the model
that the group predicts the label. Weighting each (group, label) cell by
``P(group) * P(label) / P(group, label)`` makes the weighted joint distribution factorise, so the
label carries no information about the group in what the model is trained on, while every
group keeps its share of the data and every label its base rate. Written by hand: fairlearn has no
pre-processing mitigations and AIF360's implementation needs its own dataset classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ethos.config import RunConfig
from ethos.data import Dataset
from ethos.training.ethics_options import fairness_record, mitigation_groups
from ethos.training.strategies import Plan, Strategy


def reweighing_weights(labels: np.ndarray, groups: Sequence[object] | np.ndarray) -> np.ndarray:
    """One weight per example; under them ``P(label | group)`` is the same for every group.

    Weights average exactly 1 over the examples, so the loss keeps its scale and the learning
    rate means what it meant without reweighing.
    """
    labels = np.asarray(labels)
    group_codes, group_index = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    label_codes, label_index = np.unique(labels, return_inverse=True)
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    joint = np.zeros((len(group_codes), len(label_codes)), dtype=np.float64)
    np.add.at(joint, (group_index, label_index), 1.0)
    expected = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True) / n
    cell_weight = expected / np.maximum(joint, 1.0)  # empty cells hold no examples to weigh
    return cell_weight[group_index, label_index]


class Reweighing(Strategy):
    """``train.fairness.method: reweighing``: the loop weighs each example's loss by its cell's
    weight (times its class weight, when ``train.class_weights`` asks for those)."""

    name = "reweighing"
    records = ("mitigation.fairness",)

    def __init__(self, weights: np.ndarray, record: dict[str, Any]) -> None:
        self.weights = weights
        self.record = record

    @classmethod
    def from_config(cls, config: RunConfig, train: Dataset, tokenizer: Any) -> Reweighing | None:
        fairness = config.train.fairness
        if fairness is None or fairness.method != "reweighing":
            return None
        _, values = mitigation_groups(config, train)
        return cls(reweighing_weights(train.labels, values), fairness_record(config))

    def prepare(self, plan: Plan) -> None:
        plan.weights = self.weights if plan.weights is None else plan.weights * self.weights

    def manifest(self) -> dict[str, Any]:
        return {"fairness": self.record}
