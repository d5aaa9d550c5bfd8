"""Checks of ``train.fairness``, ``train.privacy`` and ``train.adversarial``: from the configuration
alone (so a contradictory request fails before a run directory exists), and of the fairness
attribute against the training rows once they are loaded."""

from __future__ import annotations

from typing import Any

import numpy as np

from ethos.config import RunConfig
from ethos.data import Dataset
from ethos.errors import ConfigError


def fairness_attribute(config: RunConfig) -> str | None:
    """The sensitive column mitigation acts on: the named one, else the first declared."""
    fairness = config.train.fairness
    if fairness is None:
        return None
    if fairness.attribute is not None:
        return fairness.attribute
    return config.data.sensitive[0] if config.data.sensitive else None


def fairness_record(config: RunConfig) -> dict[str, Any]:
    """What ``manifest.json`` records under ``mitigation.fairness``, whatever the method."""
    fairness = config.train.fairness
    assert fairness is not None
    return {
        "method": fairness.method,
        "attribute": fairness_attribute(config),
        "constraint": fairness.constraint,
        **({"lambda": fairness.lambda_} if fairness.method == "penalty" else {}),
    }


def mitigation_groups(config: RunConfig, train: Dataset) -> tuple[str, np.ndarray]:
    """The fairness attribute and its values on the training rows, checked to be usable.

    Called for every fairness method (thresholds too), so a bad attribute fails before training.
    """
    attribute = fairness_attribute(config)
    fairness = config.train.fairness
    if fairness is None or attribute is None:
        raise ConfigError(
            "train.fairness needs a sensitive attribute",
            hint="list it in data.sensitive or name it in train.fairness.attribute",
        )
    if attribute not in train.groups.columns:
        raise ConfigError(
            f"train.fairness.attribute '{attribute}' is not a group column of the loaded data "
            f"({', '.join(train.groups.columns) or 'none'})",
            hint="add it to data.sensitive",
        )
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


def private(config: RunConfig) -> bool:
    privacy = config.train.privacy
    return privacy is not None and privacy.enabled


def check_ethics_options(config: RunConfig) -> None:
    """Refuse what cannot work; ``config`` has its data section resolved (bundle defaults in)."""
    train = config.train
    asked = [
        name
        for name, on in (
            ("fairness", train.fairness is not None),
            ("privacy", private(config)),
            ("adversarial", train.adversarial is not None),
            ("canaries", train.canaries is not None),
        )
        if on
    ]
    if asked and config.task != "classification":
        raise ConfigError(
            f"train.{asked[0]} is available for classification runs; this run is {config.task}",
            hint=f"remove train.{asked[0]} or set task: classification",
        )
    if train.fairness is not None:
        attribute = fairness_attribute(config)
        if attribute is None:
            raise ConfigError(
                f"train.fairness ({train.fairness.method}) needs a sensitive attribute, and the "
                "data declare none",
                hint="list it in data.sensitive (e.g. sensitive: [race]) or name it in "
                "train.fairness.attribute",
            )
        known = config.data.audit_groups
        if attribute not in known:
            raise ConfigError(
                f"train.fairness.attribute '{attribute}' is not one of the data's group columns "
                f"({', '.join(known) or 'none'})",
                hint="add it to data.sensitive or data.groups",
            )
    if private(config):
        if train.fairness is not None and train.fairness.method == "penalty":
            raise ConfigError(
                "a fairness penalty cannot be combined with train.privacy: the penalty compares "
                "examples within a batch, so one person's gradient is no longer their own and "
                "per-example clipping no longer bounds their influence",
                hint="under DP use fairness method reweighing or thresholds",
            )
        if train.adversarial is not None and train.adversarial.embedding != "none":
            raise ConfigError(
                "embedding-space adversarial training cannot be combined with train.privacy: "
                "its second backward pass would escape the per-example clipping",
                hint="keep train.adversarial.augment (text augmentation works under DP) and set "
                "embedding: none",
            )
        if train.l2_to_start:
            raise ConfigError(
                "train.l2_to_start cannot be combined with train.privacy: the pull toward the "
                "starting weights is added outside the per-example clipping and noise",
                hint="under DP rely on replaying the parent's rows (ethos retrain --replay)",
            )
        if train.gradient_accumulation_steps != 1:
            raise ConfigError(
                "train.privacy does not combine with gradient_accumulation_steps > 1",
                hint="raise train.batch_size instead; Poisson batches already vary in size",
            )
    adversarial = train.adversarial
    if adversarial is not None:
        from ethos.training.adversarial import check_families

        check_families(adversarial.augment)
        if not adversarial.augment and adversarial.embedding == "none":
            raise ConfigError(
                "train.adversarial asks for nothing: augment is empty and embedding is none",
                hint="e.g. augment: [char_keyboard, word_dropout] and/or embedding: fgm",
            )
