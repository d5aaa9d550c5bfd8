"""The registry of training strategies: ``train.fairness``, ``train.adversarial`` and
``train.privacy`` turned into the :class:`~ethos.training.strategies.Strategy` objects the loop
calls.

Each entry builds its strategy from the run's config, training rows and tokenizer, or returns
None when the config does not ask for it. A new mitigation is one module with a ``Strategy`` and
one line here. The order is the order the loop calls them in; fairness comes first, so the
manifest lists it before adversarial training, as it always has. Threshold post-processing
(``fairness.method: thresholds``) happens after training and is not a strategy.
"""

from __future__ import annotations

from typing import Any

from ethos.config import RunConfig
from ethos.data import Dataset
from ethos.training.adversarial import Augmentation, EmbeddingAttacks
from ethos.training.anchor import StartAnchor
from ethos.training.ethics_options import check_ethics_options, mitigation_groups
from ethos.training.fairness_penalty import FairnessPenalty
from ethos.training.privacy import DPSGD
from ethos.training.reweighing import Reweighing
from ethos.training.strategies import Build, Strategy

STRATEGIES: dict[str, Build] = {
    "reweighing": Reweighing.from_config,
    "fairness_penalty": FairnessPenalty.from_config,
    "augmentation": Augmentation.from_config,
    "embedding_attack": EmbeddingAttacks.from_config,
    "dp_sgd": DPSGD.from_config,
    "l2_to_start": StartAnchor.from_config,
}


def build_strategies(config: RunConfig, train: Dataset, tokenizer: Any) -> list[Strategy]:
    """The strategies ``config`` asks for, in registry order.

    Combinations that cannot work are refused first (``ethos train`` has refused them already;
    this guards other callers: under DP a penalty's gradient would escape the per-example
    clipping). The fairness attribute is checked against the training rows for every method, so
    a threshold run (no strategy) with an unusable attribute fails before training too.
    """
    check_ethics_options(config)
    if config.train.fairness is not None:
        mitigation_groups(config, train)
    built = (build(config, train, tokenizer) for build in STRATEGIES.values())
    return [strategy for strategy in built if strategy is not None]
