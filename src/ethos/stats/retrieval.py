"""Retrieval metrics (recall@k, MRR) and the ranking helpers shared by dense search and BM25.

Definitions, for a query with gold passage set G (one or more ids) and a ranking of *distinct
passages* r_1, r_2, ...:

* recall@k = |G ∩ {r_1..r_k}| / |G|: the share of the gold passages found in the top k. With one
  gold passage per query (PubMedQA: a question's own abstract) it is the hit rate at k;
* reciprocal rank = 1 / (rank of the first gold passage), 0 when none is ranked;
* both are averaged over queries (a macro average; each query counts once).

A knowledge base indexes *chunks*; a passage is retrieved when any of its chunks is. Rankings of
chunks are turned into rankings of passages by :func:`passage_ranking` (each passage at the rank
of its best chunk, later chunks dropped), so a passage cut into three chunks does not fill three
of the top k places. Search engines do the same in one step with :func:`best_per_group` (a
passage's score is its best chunk's score) before :func:`top_k`.

Ties are broken by position (the earlier row first), so a ranking is deterministic.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row of ``scores`` (queries x items), best first.

    Returns (scores, indices), both (queries, min(k, items)). Ties go to the lower index.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    scores = np.atleast_2d(scores)
    k = min(k, scores.shape[1])
    if k < scores.shape[1] // 4:
        # argpartition narrows each row to candidates (those scoring at least the k-th best
        # score, ties included), then a stable sort of the candidates orders them.
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
        out = np.empty((scores.shape[0], k), dtype=np.int64)
        for row, (values, bar) in enumerate(zip(scores, kth, strict=True)):
            candidates = np.flatnonzero(values >= bar[0])
            order = np.argsort(-values[candidates], kind="stable")[:k]
            out[row] = candidates[order]
    else:
        out = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, out, axis=1), out


def group_starts(groups: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Where each run of equal adjacent ``groups`` starts, and the run's name.

    Raises ValueError when a group occurs in two runs: its chunks must be adjacent.
    """
    starts: list[int] = []
    names: list[str] = []
    for position, name in enumerate(groups):
        if not names or name != names[-1]:
            starts.append(position)
            names.append(name)
    if len(set(names)) != len(names):
        raise ValueError("the chunks of a passage are not adjacent")
    return np.asarray(starts, dtype=np.int64), names


def best_per_group(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each row's best score in each run of columns starting at ``starts`` (queries x groups)."""
    scores = np.atleast_2d(scores)
    if len(starts) == scores.shape[1]:
        return scores
    return np.maximum.reduceat(scores, starts, axis=1)


def passage_ranking(ranked_chunks: Sequence[str], passage_of: Mapping[str, str]) -> list[str]:
    """Chunk ids ranked best first -> passage ids ranked by their best chunk, each once."""
    seen: dict[str, None] = {}
    for chunk in ranked_chunks:
        seen.setdefault(passage_of.get(chunk, chunk), None)
    return list(seen)


def first_gold_ranks(
    ranked: Sequence[Sequence[str]], gold: Sequence[Collection[str]]
) -> np.ndarray:
    """1-based rank of the first gold passage in each ranking, 0 where none is ranked."""
    _check(ranked, gold)
    out = np.zeros(len(ranked), dtype=np.int64)
    for row, (ids, wanted) in enumerate(zip(ranked, gold, strict=True)):
        for rank, passage in enumerate(ids, 1):
            if passage in wanted:
                out[row] = rank
                break
    return out


def recall_at_k(ranked: Sequence[Sequence[str]], gold: Sequence[Collection[str]], k: int) -> float:
    """Mean over queries of the share of gold passages in the top ``k`` of the ranking."""
    return float(np.mean(recalls_at_k(ranked, gold, k)))


def recalls_at_k(
    ranked: Sequence[Sequence[str]], gold: Sequence[Collection[str]], k: int
) -> np.ndarray:
    """Per-query recall@k (for confidence intervals)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    _check(ranked, gold)
    return np.array(
        [
            len(set(wanted) & set(ids[:k])) / len(set(wanted))
            for ids, wanted in zip(ranked, gold, strict=True)
        ],
        dtype=np.float64,
    )


def reciprocal_ranks(
    ranked: Sequence[Sequence[str]], gold: Sequence[Collection[str]]
) -> np.ndarray:
    """Per-query 1 / rank of the first gold passage (0 where none is ranked)."""
    ranks = first_gold_ranks(ranked, gold)
    return np.where(ranks > 0, 1.0 / np.maximum(ranks, 1), 0.0)


def mean_reciprocal_rank(ranked: Sequence[Sequence[str]], gold: Sequence[Collection[str]]) -> float:
    """MRR: the mean over queries of 1 / rank of the first gold passage."""
    return float(np.mean(reciprocal_ranks(ranked, gold)))


def retrieval_metrics(
    ranked: Sequence[Sequence[str]],
    gold: Sequence[Collection[str]],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """``{"recall@1": ..., "recall@5": ..., "recall@10": ..., "mrr": ...}``.

    MRR is computed on the rankings as given: rank them as deep as the metric should look (a
    ranking cut at 10 gives MRR@10).
    """
    out = {f"recall@{k}": recall_at_k(ranked, gold, k) for k in ks}
    out["mrr"] = mean_reciprocal_rank(ranked, gold)
    return out


def _check(ranked: Sequence[Sequence[str]], gold: Sequence[Collection[str]]) -> None:
    if len(ranked) != len(gold):
        raise ValueError(f"{len(ranked)} rankings but {len(gold)} gold sets")
    if len(ranked) == 0:
        raise ValueError("no queries")
    if any(len(wanted) == 0 for wanted in gold):
        raise ValueError("every query needs at least one gold passage")
    if any(isinstance(wanted, str) for wanted in gold):
        raise ValueError("gold must be a collection of ids per query, not one string")
