"""Seeded synthetic traffic for the monitor and dashboard tests: no model, only arrays.

A reference is built from a seeded "test set"; observations are drawn from the same laws or from
shifted ones (probabilities pushed up, longer texts, more unknown words, moved embeddings, groups
decided differently).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ethos.serving.monitor import Alert, Monitor, Observation, Reference

DIM = 16
GROUPS = ("a", "b")
DRIFT_ALERTS = {
    "probability_psi",
    "probability_ks_pvalue",
    "length_psi",
    "oov_rate_delta",
    "embedding_shift",
    "positive_rate_delta",
}


class Clock:
    """A fake clock that moves one second per reading, so snapshots have distinct times."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def sample(
    rng: np.random.Generator,
    n: int,
    *,
    shifted: bool = False,
    group_bias: float = 0.0,
) -> dict[str, Any]:
    """Per-row arrays from the reference laws, or from shifted ones.

    Shifted: probabilities Beta(5, 2) instead of Beta(2, 3) (mean 0.71 instead of 0.40), 20 more
    tokens, OOV rates 0.15 higher, every embedding dimension moved by 0.6 standard deviations.
    ``group_bias`` adds to group a's probabilities and subtracts from group b's.
    """
    groups = rng.choice(GROUPS, size=n)
    probs = rng.beta(5, 2, size=n) if shifted else rng.beta(2, 3, size=n)
    probs = np.clip(probs + np.where(groups == "a", group_bias, -group_bias), 0.0, 1.0)
    return {
        "lengths": rng.poisson(30, size=n) + (20 if shifted else 0),
        "oov": np.clip(rng.beta(1, 20, size=n) + (0.15 if shifted else 0.0), 0, 1),
        "embeddings": rng.normal(loc=0.6 if shifted else 0.0, size=(n, DIM)),
        "probs": probs,
        "groups": groups,
        "labels": rng.random(n) < probs,  # calibrated: accuracy about 0.7 on the reference
    }


def make_reference(seed: int = 0) -> Reference:
    """The "test set": 2000 rows from the reference laws, with a race attribute and labels."""
    drawn = sample(np.random.default_rng(seed), 2000)
    return Reference.from_arrays(
        drawn["lengths"],
        drawn["oov"],
        drawn["embeddings"],
        drawn["probs"],
        {"race": list(drawn["groups"])},
        labels=drawn["labels"],
    )


_ids = itertools.count()


def observations(drawn: dict[str, Any]) -> list[Observation]:
    return [
        Observation(
            prediction_id=f"p{next(_ids)}",
            length=int(drawn["lengths"][i]),
            oov_rate=float(drawn["oov"][i]),
            embedding=drawn["embeddings"][i],
            positive_prob=float(drawn["probs"][i]),
            predicted_positive=bool(drawn["probs"][i] >= 0.5),
            group=str(drawn["groups"][i]),
        )
        for i in range(len(drawn["probs"]))
    ]


def feed(monitor: Monitor, rng: np.random.Generator, n: int, **law: Any) -> list[Alert]:
    """Serve n predictions in batches of 20 with a check after each, as the app does."""
    raised = []
    for _ in range(n // 20):
        monitor.observe(observations(sample(rng, 20, **law)))
        raised.extend(monitor.check())
    return raised


def shifted_texts(n: int, seed: int = 3) -> list[str]:
    """Texts for a live server that no COMPAS row resembles: 120 made-up nine-letter words each,
    so far longer and far more out-of-vocabulary than the test set (length PSI and OOV alerts)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("qxzjkvwy"))
    return [" ".join("".join(rng.choice(letters, 9)) for _ in range(120)) for _ in range(n)]
