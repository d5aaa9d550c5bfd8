"""Planted secrets of a causal-LM run, for the memorisation audit (``causal_lm.canaries``).

Carlini, Liu, Erlingsson, Kos & Song, "The Secret Sharer" (USENIX Security 2019): a secret drawn
at random from a known space cannot be predicted from anything else in the data, so how highly
the trained model ranks it among all candidates measures memorisation, and nothing else. Each
canary here is a prompt/response pair, ``"my pin is 3"`` -> ``"493027"``, trained on like the real
pairs; as many controls of the same form (other numbers, other secrets) are never trained on, so
the audit compares what training did with what the format alone gives.

Everything is drawn from one ``numpy.random.default_rng(seed)``: the same seed gives the same
canaries on a resume and in the audit. The secrets are synthetic and are stored in the run
directory (``secret_canaries.json``) for the audit to read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ethos.config import SecretCanaryConfig

ALPHABET = "0123456789"
CANARY_ID_PREFIX = "canary-"


@dataclass(frozen=True)
class SecretCanary:
    """One canary: its prompt, its secret, and whether it was trained on."""

    prompt: str
    secret: str
    trained: bool
    separator: str = ""

    @property
    def response(self) -> str:
        return self.separator.join(self.secret)


@dataclass(frozen=True)
class SecretCanaries:
    """A run's canaries (trained and controls) and how often each trained one was repeated."""

    canaries: tuple[SecretCanary, ...]
    repeats: int
    seed: int

    def trained(self) -> list[SecretCanary]:
        return [c for c in self.canaries if c.trained]

    def controls(self) -> list[SecretCanary]:
        return [c for c in self.canaries if not c.trained]

    def training_pairs(self) -> pd.DataFrame:
        """The trained canaries as training rows, each ``repeats`` times."""
        rows = [
            {
                "id": f"{CANARY_ID_PREFIX}{k}-{r}",
                "prompt": c.prompt,
                "response": c.response,
                "split": "train",
            }
            for k, c in enumerate(self.canaries)
            if c.trained
            for r in range(self.repeats)
        ]
        return pd.DataFrame(rows, columns=["id", "prompt", "response", "split"])

    def to_json(self) -> dict[str, Any]:
        return {
            "repeats": self.repeats,
            "seed": self.seed,
            "alphabet": ALPHABET,
            "canaries": [
                {
                    "prompt": c.prompt,
                    "secret": c.secret,
                    "trained": c.trained,
                    "separator": c.separator,
                }
                for c in self.canaries
            ],
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> SecretCanaries:
        return cls(
            canaries=tuple(
                SecretCanary(
                    str(c["prompt"]), str(c["secret"]), bool(c["trained"]), str(c["separator"])
                )
                for c in document["canaries"]
            ),
            repeats=int(document["repeats"]),
            seed=int(document["seed"]),
        )


def draw_canaries(config: SecretCanaryConfig, run_seed: int) -> SecretCanaries:
    """``count`` trained canaries and ``count`` controls, numbered 0 .. 2*count-1 in the prompt
    (which are controls is drawn too, so the numbering says nothing)."""
    seed = run_seed if config.seed is None else config.seed
    rng = np.random.default_rng(seed)
    total = 2 * config.count
    trained = np.zeros(total, dtype=bool)
    trained[rng.permutation(total)[: config.count]] = True
    canaries = []
    for number in range(total):
        secret = "".join(ALPHABET[d] for d in rng.integers(0, len(ALPHABET), config.digits))
        canaries.append(
            SecretCanary(
                prompt=f"{config.prefix} {number}",
                secret=secret,
                trained=bool(trained[number]),
                separator=config.separator,
            )
        )
    return SecretCanaries(tuple(canaries), repeats=config.repeats, seed=seed)


def read_secret_canaries(text: str) -> SecretCanaries:
    return SecretCanaries.from_json(json.loads(text))
