"""Okapi BM25 against scores worked out by hand on a three-document corpus."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ethos.text.bm25 import BM25, tokenize

CORPUS = ["The cat sat", "the dog sat on the log", "cats and dogs"]
# N = 3 documents of 3, 6 and 3 tokens: avgdl = 4. k1 = 1.5, b = 0.75.
# Length norms k1 * (1 - b + b * |D| / avgdl):
#   d0, d2: 1.5 * 0.8125 = 1.21875; d1: 1.5 * 1.375 = 2.0625.
IDF_THE = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # "the" is in d0 and d1: ln 1.6
IDF_CAT = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))  # "cat" only in d0: ln(8/3)
IDF_SAT = IDF_THE  # "sat" is in d0 and d1


def test_tokenizer_keeps_lower_cased_alphanumeric_runs() -> None:
    assert tokenize("COVID-19's risk_factor, über-Größe 3.5") == [
        "covid",
        "19",
        "s",
        "risk",
        "factor",
        "über",
        "größe",
        "3",
        "5",
    ]


def test_scores_match_the_hand_computed_formula() -> None:
    index = BM25(CORPUS)
    assert index.average_length == 4.0
    scores = index.score("the cat")
    d0 = IDF_THE * 1 * 2.5 / (1 + 1.21875) + IDF_CAT * 1 * 2.5 / (1 + 1.21875)
    d1 = IDF_THE * 2 * 2.5 / (2 + 2.0625)  # "the" twice in d1, no "cat"
    assert scores == pytest.approx([d0, d1, 0.0], abs=1e-12)
    assert scores == pytest.approx([1.634742, 0.578466, 0.0], abs=1e-6)  # the numbers, by hand


def test_a_repeated_query_token_counts_twice_and_unknown_tokens_nothing() -> None:
    index = BM25(CORPUS)
    once, twice = index.score("sat"), index.score("sat sat zebra")
    assert once[1] == pytest.approx(IDF_SAT * 1 * 2.5 / (1 + 2.0625))
    assert twice == pytest.approx(2 * once)
    assert not index.score("zebra").any()


def test_parameters_change_the_formula_as_documented() -> None:
    index = BM25(CORPUS, k1=1.2, b=0.0)  # no length normalisation
    assert index.score("the")[1] == pytest.approx(IDF_THE * 2 * 2.2 / (2 + 1.2))
    with pytest.raises(ValueError, match="at least one document"):
        BM25([])
    with pytest.raises(ValueError, match="0 <= b <= 1"):
        BM25(CORPUS, b=1.5)


def test_batch_scores_equal_single_scores() -> None:
    index = BM25(CORPUS)
    queries = ["the cat", "dogs", "log on"]
    batch = index.scores(queries)
    assert batch.shape == (3, 3)
    assert np.allclose(batch, [index.score(q) for q in queries])
