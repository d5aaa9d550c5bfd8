"""Canaries for the one-run privacy audit: drawn deterministically, half trained on, train only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ethos.data.canaries import (
    CANARY_WORDS,
    Canaries,
    canary_words,
    check_canary_count,
    make_canaries,
    with_canaries,
)
from ethos.data.dataset import Dataset
from ethos.errors import DataError

WORDS = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}x" for i in range(300)]
"""Letters-only whole words (``wabx``), enough for canaries."""
VOCABULARY = ["[PAD]", "[CLS]", "[unused7]", "##ing", "the", "42", "Paris", "café", "ab", *WORDS]
"""A stand-in word-piece vocabulary: specials, a piece, digits, a capital, an accent, a two-letter
word, and words."""


def _train_part(n: int = 40) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(
        name="toy[train]",
        source="toy",
        ids=np.arange(n),
        texts=[f"row {i}" for i in range(n)],
        labels=rng.integers(0, 2, n),
        label_names=("no", "yes"),
        groups=pd.DataFrame(
            {"race": rng.choice(["A", "B", "C"], n), "sex": rng.choice(["F", "M"], n)}
        ),
        split=np.array(["train"] * n, dtype=object),
        fingerprint="f" * 64,
    )


def test_only_whole_lower_case_words_are_used() -> None:
    assert canary_words(VOCABULARY) == sorted({*WORDS, "the"})
    canaries = make_canaries(50, vocabulary=VOCABULARY, label_names=["no", "yes"], seed=1)
    allowed = set(canary_words(VOCABULARY))
    for text in canaries.texts:
        words = text.split(" ")
        assert len(words) == CANARY_WORDS and set(words) <= allowed


def test_the_same_seed_draws_the_same_canaries_and_another_seed_others() -> None:
    def draw(seed: int) -> Canaries:
        return make_canaries(64, vocabulary=VOCABULARY, label_names=["no", "yes"], seed=seed)

    first, again, other = draw(7), draw(7), draw(8)
    assert first.texts == again.texts and first.labels == again.labels
    assert np.array_equal(first.included, again.included)
    assert first.texts != other.texts
    assert len(set(first.texts)) == 64  # no two canaries alike


def test_about_half_are_included_and_labels_are_uniform() -> None:
    canaries = make_canaries(20_000, vocabulary=VOCABULARY, label_names=["a", "b", "c"], seed=3)
    # Binomial(20000, 1/2): a standard deviation of 0.0035 in the fraction; 0.015 is > 4 sd.
    assert canaries.included.mean() == pytest.approx(0.5, abs=0.015)
    shares = pd.Series(canaries.labels).value_counts(normalize=True)
    assert set(shares.index) == {"a", "b", "c"}
    assert np.allclose(shares.to_numpy(), 1 / 3, atol=0.015)
    # The coin does not depend on the label (each canary's coin is its own fair draw).
    for label in "abc":
        chosen = np.array(canaries.labels) == label
        assert canaries.included[chosen].mean() == pytest.approx(0.5, abs=0.03)


def test_only_included_canaries_join_the_training_rows_with_real_groups() -> None:
    train = _train_part()
    canaries = make_canaries(30, vocabulary=VOCABULARY, label_names=["no", "yes"], seed=2)
    joined = with_canaries(train, canaries)
    added = len(joined) - len(train)
    assert added == canaries.n_included > 0
    assert joined.texts[: len(train)] == train.texts
    assert set(joined.split) == {"train"}  # never validation or test
    new_texts = joined.texts[len(train) :]
    assert new_texts == [t for t, c in zip(canaries.texts, canaries.included, strict=True) if c]
    assert [str(i) for i in joined.ids[len(train) :]] == [
        i for i, c in zip(canaries.ids, canaries.included, strict=True) if c
    ]
    labels = [joined.label_names[i] for i in joined.labels[len(train) :]]
    assert labels == [y for y, c in zip(canaries.labels, canaries.included, strict=True) if c]
    # Group values are copied from real training rows: no new group appears.
    for column in train.groups.columns:
        assert set(joined.groups[column]) <= set(train.groups[column])
    assert len(joined.groups) == len(joined.texts) == len(joined.labels)


def test_canaries_round_trip_through_json() -> None:
    canaries = make_canaries(12, vocabulary=VOCABULARY, label_names=["no", "yes"], seed=4)
    back = Canaries.from_json(canaries.to_json())
    assert back.texts == canaries.texts and back.labels == canaries.labels
    assert np.array_equal(back.included, canaries.included)
    assert back.seed == 4 and back.label_names == ("no", "yes")
    assert "12 (" in repr(back)


def test_more_canaries_than_training_rows_is_refused() -> None:
    with pytest.raises(DataError, match=r"train\.canaries\.count is 41, more than the 40") as info:
        check_canary_count(41, 40)
    assert "at most 40 canaries" in str(info.value.hint)
    check_canary_count(40, 40)
    canaries = make_canaries(50, vocabulary=VOCABULARY, label_names=["no", "yes"], seed=1)
    with pytest.raises(DataError, match="more than the 40 training rows"):
        with_canaries(_train_part(40), canaries)


def test_a_vocabulary_without_words_is_refused() -> None:
    with pytest.raises(DataError, match="at least 100 whole words"):
        make_canaries(10, vocabulary=["[CLS]", "##a", "ab"], label_names=["0", "1"], seed=0)
