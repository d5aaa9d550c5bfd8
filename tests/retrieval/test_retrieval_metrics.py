"""Recall@k, MRR and the ranking helpers on cases small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ethos.stats.retrieval import (
    best_per_group,
    first_gold_ranks,
    group_starts,
    mean_reciprocal_rank,
    passage_ranking,
    recall_at_k,
    retrieval_metrics,
    top_k,
)

RANKED = [["a", "b", "c"], ["x", "y", "z"], ["q", "g1", "g2"]]
GOLD = [{"b"}, {"missing"}, {"g1", "g2"}]


def test_recall_and_mrr_by_hand() -> None:
    assert first_gold_ranks(RANKED, GOLD).tolist() == [2, 0, 2]
    assert recall_at_k(RANKED, GOLD, 1) == 0.0
    assert recall_at_k(RANKED, GOLD, 2) == pytest.approx((1 + 0 + 0.5) / 3)  # one of two gold
    assert recall_at_k(RANKED, GOLD, 3) == pytest.approx((1 + 0 + 1) / 3)
    assert mean_reciprocal_rank(RANKED, GOLD) == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    assert retrieval_metrics(RANKED, GOLD, ks=(1, 3)) == pytest.approx(
        {"recall@1": 0.0, "recall@3": 2 / 3, "mrr": 1 / 3}
    )


def test_a_passage_counts_once_at_its_best_chunk() -> None:
    passage_of = {"p1#0": "p1", "p1#1": "p1", "p2#0": "p2", "p3#0": "p3"}
    ranked = passage_ranking(["p2#0", "p1#1", "p2#0", "p1#0", "p3#0"], passage_of)
    assert ranked == ["p2", "p1", "p3"]
    # gold p3 is third among passages though its chunk was fifth among chunks
    assert first_gold_ranks([ranked], [{"p3"}]).tolist() == [3]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="2 rankings but 1"):
        recall_at_k([["a"], ["b"]], [{"a"}], 1)
    with pytest.raises(ValueError, match="at least one gold"):
        mean_reciprocal_rank([["a"]], [set()])
    with pytest.raises(ValueError, match="not one string"):
        mean_reciprocal_rank([["a"]], ["a"])
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k([["a"]], [{"a"}], 0)


def test_top_k_is_best_first_with_ties_to_the_lower_index() -> None:
    scores, indices = top_k(np.array([[1.0, 3.0, 3.0, 2.0]]), 2)
    assert indices.tolist() == [[1, 2]] and scores.tolist() == [[3.0, 3.0]]
    assert top_k(np.array([[1.0, 2.0]]), 10)[1].tolist() == [[1, 0]]  # k beyond the items


def test_top_k_partition_path_equals_a_full_stable_sort() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(20, 100)).astype(np.float64)  # many ties
    for k in (1, 3, 10, 24, 60):
        _, indices = top_k(scores, k)
        assert indices.tolist() == np.argsort(-scores, axis=1, kind="stable")[:, :k].tolist()


def test_best_per_group_takes_each_passages_best_chunk() -> None:
    starts, names = group_starts(["p1", "p1", "p2", "p3", "p3"])
    assert starts.tolist() == [0, 2, 3] and names == ["p1", "p2", "p3"]
    scores = np.array([[0.1, 0.5, 0.2, 0.9, 0.3]])
    assert best_per_group(scores, starts).tolist() == [[0.5, 0.2, 0.9]]
    with pytest.raises(ValueError, match="not adjacent"):
        group_starts(["p1", "p2", "p1"])
