"""Canaries for the one-run privacy audit: crafted records, half of them trained on at random.

The audit of Steinke, Nasr & Jagielski, "Privacy Auditing with One (1) Training Run" (NeurIPS
2023) needs ``m`` records that the model could not predict from the real data, each included in
training *independently with probability exactly 1/2* (:mod:`ethos.stats.privacy_audit` states the
assumptions). A canary here is

* a text of :data:`CANARY_WORDS` words drawn uniformly, with replacement, from the whole-word
  entries of the model's own vocabulary (no special or ``[unused]`` tokens, no ``##`` pieces), so
  every word is a single known token and no real row says anything about the sequence;
* a label drawn uniformly from the task's label names, so only memorising the canary can predict
  it;
* an inclusion coin: a fair Bernoulli draw per canary.

Everything comes from one ``numpy.random.default_rng(seed)``, so a seed (the run's, unless
``train.canaries.seed`` names another) gives the same canaries on a resume and in the audit.

Included canaries join the training part only (:func:`with_canaries`): never validation or test,
never the baselines, and never another audit, which reloads the real rows through the run
directory. Their group columns are copied from training rows drawn at random (with the same
generator): group-aware training (reweighing, group-balanced batches, the fairness attribute's
checks) then sees only groups the data hold, in about the data's proportions, while a made-up
value would be a new group of ~m/2 rows of pure noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ethos.data.dataset import Dataset
from ethos.errors import DataError

CANARY_WORDS = 8
"""Words per canary text: 8 draws from ~20k words are unique (about 2^114 sequences), and short
enough to fit the shortest ``model.max_length`` (8 tokens, with [CLS] and [SEP], is truncated
but still unique)."""
CANARY_ID_PREFIX = "canary-"
MIN_WORDS = 100
"""A vocabulary with fewer usable whole words cannot make canaries that real rows say nothing
about."""


@dataclass(frozen=True, eq=False)
class Canaries:
    """The ``m`` canaries of a run: texts, assigned labels, and which were trained on.

    ``labels`` are label *names* (as in ``label_names``); ``included[i]`` is canary ``i``'s coin.
    """

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    included: np.ndarray
    seed: int
    label_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (len(self.texts) == len(self.labels) == len(self.included)):
            raise DataError(
                f"canaries: {len(self.texts)} texts, {len(self.labels)} labels and "
                f"{len(self.included)} inclusion flags; they must be one per canary"
            )
        unknown = sorted(set(self.labels) - set(self.label_names))
        if unknown:
            raise DataError(f"canary labels {unknown} are not among {list(self.label_names)}")

    @property
    def count(self) -> int:
        return len(self.texts)

    @property
    def n_included(self) -> int:
        return int(np.count_nonzero(self.included))

    @property
    def label_indices(self) -> np.ndarray:
        position = {name: i for i, name in enumerate(self.label_names)}
        return np.array([position[name] for name in self.labels], dtype=np.int64)

    @property
    def ids(self) -> list[str]:
        return [f"{CANARY_ID_PREFIX}{i:05d}" for i in range(self.count)]

    def to_json(self) -> dict[str, Any]:
        """What ``canaries.json`` holds (:meth:`ethos.rundir.RunDir.canaries` reads it back)."""
        return {
            "count": self.count,
            "included": self.n_included,
            "seed": self.seed,
            "words_per_canary": CANARY_WORDS,
            "label_names": list(self.label_names),
            "canaries": [
                {"id": i, "text": t, "label": y, "included": bool(c)}
                for i, t, y, c in zip(self.ids, self.texts, self.labels, self.included, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Canaries:
        rows = document["canaries"]
        return cls(
            texts=tuple(str(r["text"]) for r in rows),
            labels=tuple(str(r["label"]) for r in rows),
            included=np.array([bool(r["included"]) for r in rows], dtype=bool),
            seed=int(document["seed"]),
            label_names=tuple(str(n) for n in document["label_names"]),
        )

    def __repr__(self) -> str:
        return (
            f"<Canaries: {self.count} ({self.n_included} trained on), seed {self.seed}, "
            f"labels {', '.join(self.label_names)}>"
        )


def canary_words(vocabulary: Iterable[str]) -> list[str]:
    """The vocabulary entries a canary may use: lower-case ASCII whole words of 3+ letters.

    That leaves out special tokens (``[CLS]``, ``[unused12]``), word pieces (``##ing``), digits
    and punctuation. Sorted, so the draw depends on the seed and the vocabulary only.
    """
    return sorted(
        {w for w in vocabulary if len(w) >= 3 and w.isascii() and w.isalpha() and w.islower()}
    )


def make_canaries(
    count: int, *, vocabulary: Iterable[str], label_names: Sequence[str], seed: int
) -> Canaries:
    """Draw ``count`` canaries: texts, uniform labels and fair inclusion coins (one generator)."""
    if count < 2:
        raise DataError(f"canaries: count must be at least 2, got {count}")
    words = canary_words(vocabulary)
    if len(words) < MIN_WORDS:
        raise DataError(
            f"canaries need a vocabulary of at least {MIN_WORDS} whole words; the model's "
            f"tokenizer has {len(words)}",
            hint="use a model with a word-piece vocabulary, or remove train.canaries",
        )
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(words), size=(count, CANARY_WORDS))
    labels = rng.integers(0, len(label_names), size=count)
    included = rng.random(count) < 0.5
    return Canaries(
        texts=tuple(" ".join(words[j] for j in row) for row in drawn),
        labels=tuple(label_names[int(i)] for i in labels),
        included=included,
        seed=seed,
        label_names=tuple(label_names),
    )


def check_canary_count(count: int, train_rows: int) -> None:
    """Refuse more canaries than real training rows, before any training."""
    if count > train_rows:
        raise DataError(
            f"train.canaries.count is {count}, more than the {train_rows} training rows",
            hint=f"use at most {train_rows} canaries (about half are trained on), or train on "
            "more rows",
        )


def with_canaries(train: Dataset, canaries: Canaries) -> Dataset:
    """The training part with the included canaries appended (ids ``canary-00007``, ...).

    Group columns (and kept columns, and record fields) of each canary row are those of a
    training row drawn with the canaries' seed (see the module docstring); the canaries' texts
    are what the model sees.
    """
    if tuple(train.label_names) != canaries.label_names:
        raise DataError(
            f"canary labels {list(canaries.label_names)} are not the data's "
            f"{list(train.label_names)}"
        )
    check_canary_count(canaries.count, len(train))
    keep = np.flatnonzero(canaries.included)
    donors = np.random.default_rng([canaries.seed, 1]).integers(0, len(train), size=canaries.count)
    rows = donors[keep]

    def extended(frame: pd.DataFrame) -> pd.DataFrame:
        if not len(frame.columns):
            return frame
        return pd.concat([frame, frame.iloc[rows]], ignore_index=True)

    pairs = None
    if train.text_pairs is not None:
        pairs = [*train.text_pairs, *([""] * len(keep))]
    return Dataset(
        name=train.name,
        source=train.source,
        ids=np.concatenate([train.ids.astype(object), np.array(canaries.ids, dtype=object)[keep]]),
        texts=[*train.texts, *(canaries.texts[i] for i in keep)],
        labels=np.concatenate([train.labels, canaries.label_indices[keep]]),
        label_names=train.label_names,
        groups=extended(train.groups),
        split=np.concatenate([train.split, np.array(["train"] * len(keep), dtype=object)]),
        fingerprint=train.fingerprint,
        text_pairs=pairs,
        extra=extended(train.extra),
        records=extended(train.records),
        text_fields=train.text_fields,
        text_includes_sensitive=train.text_includes_sensitive,
        source_sha256=train.source_sha256,
        notes=train.notes,
        warnings=train.warnings,
    )
