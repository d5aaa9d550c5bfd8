"""Turn ``train.fairness`` and ``train.adversarial`` into the pieces the loop takes.

Each option maps to one hook of :func:`ethos.training.loop.train_loop`: reweighing to example
weights, the fairness penalty to a loss term plus group-balanced batches, augmentation to a
per-epoch training set, embedding attacks to an :class:`EmbeddingAttack`. Threshold
post-processing happens after training and is not a loop piece.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ethos.config import RunConfig
from ethos.data import Dataset
from ethos.errors import ConfigError
from ethos.training.adversarial import EmbeddingAttack, augment_texts
from ethos.training.batching import Encoded, encode
from ethos.training.ethics_options import fairness_attribute
from ethos.training.fairness_penalty import fairness_penalty, group_balanced_order
from ethos.training.loop import BatchOrder, EpochData, LossTerm
from ethos.training.reweighing import reweighing_weights


@dataclass
class TrainingAids:
    example_weights: np.ndarray | None = None
    loss_terms: list[LossTerm] = field(default_factory=list)
    batch_order: BatchOrder | None = None
    epoch_data: EpochData | None = None
    attack: EmbeddingAttack | None = None


def mitigation_groups(config: RunConfig, train: Dataset) -> tuple[str, np.ndarray] | None:
    """The fairness attribute and its values on the training rows, checked to be usable."""
    attribute = fairness_attribute(config)
    if attribute is None:
        return None
    if attribute not in train.groups.columns:
        raise ConfigError(
            f"train.fairness.attribute '{attribute}' is not a group column of the loaded data "
            f"({', '.join(train.groups.columns) or 'none'})",
            hint="add it to data.sensitive",
        )
    fairness = config.train.fairness
    assert fairness is not None
    if fairness.method in ("penalty", "thresholds") and len(train.label_names) != 2:
        raise ConfigError(
            f"train.fairness method {fairness.method} needs a binary label; this one has "
            f"{len(train.label_names)} classes ({', '.join(train.label_names)})",
            hint="use method: reweighing, which works for any number of classes",
        )
    values = train.groups[attribute].astype(str).to_numpy()
    if len(np.unique(values)) < 2:
        raise ConfigError(
            f"train.fairness: the training rows hold one value of '{attribute}' only",
            hint="mitigation compares groups; check the data and data.sensitive",
        )
    return attribute, values


def training_aids(config: RunConfig, train: Dataset, tokenizer: Any) -> TrainingAids:
    aids = TrainingAids()
    fairness = config.train.fairness
    found = mitigation_groups(config, train)
    if fairness is not None and found is not None:
        _, values = found
        codes = np.unique(values, return_inverse=True)[1]
        if fairness.method == "reweighing":
            aids.example_weights = reweighing_weights(train.labels, values)
        elif fairness.method == "penalty":
            aids.loss_terms.append(
                fairness_penalty(
                    codes, train.labels, constraint=fairness.constraint, weight=fairness.lambda_
                )
            )
            batch_size = config.train.batch_size

            def balanced(generator: np.random.Generator) -> list[np.ndarray]:
                return group_balanced_order(codes, batch_size, generator)

            aids.batch_order = balanced
    adversarial = config.train.adversarial
    if adversarial is not None:
        if adversarial.augment:
            aids.epoch_data = _augmented_epochs(config, train, tokenizer)
        if adversarial.embedding != "none":
            aids.attack = EmbeddingAttack(adversarial)
    return aids


def _augmented_epochs(config: RunConfig, train: Dataset, tokenizer: Any) -> EpochData:
    adversarial = config.train.adversarial
    assert adversarial is not None
    families = list(adversarial.augment)
    fraction = adversarial.fraction
    texts = list(train.texts)

    def epoch_data(epoch: int, generator: np.random.Generator) -> Encoded:
        # The loop's generator: a resumed run perturbs the same texts the same way.
        perturbed, _ = augment_texts(texts, families, fraction, generator)
        return encode(
            tokenizer,
            perturbed,
            train.text_pairs,
            train.labels,
            max_length=config.model.max_length,
        )

    return epoch_data
