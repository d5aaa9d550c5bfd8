"""Paired bootstrap deltas: how much did a child model change a metric, on the same rows?

The governance diff (issue 17) compares a fine-tuned child with its parent. Two independent
intervals, one per run, overlap far more often than the change itself is uncertain, because most
of the noise in a metric is *which rows* were drawn, and both models see the same rows. The paired
bootstrap removes that shared noise: every resample draws one set of row indices and scores both
models on it, so the statistic is ``metric(child) - metric(parent)`` on identical rows (Efron &
Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 6: resample the observed units, here
test rows carrying both models' outputs; the same design is standard for comparing two systems
on one test set, e.g. Koehn 2004). The interval is the percentile interval of those deltas
(ibid., ch. 13).

Choices, and why:

* **Stratified by group** when group codes are given: each resample keeps every group's size, so
  a per-group rate is defined in every resample that it is defined in the data, and the interval
  describes the rows a reviewer actually has (as :mod:`ethos.stats.bootstrap` does).
* **Undefined resamples are dropped and counted**, not fatal: AUROC of a resample with one true
  class, a group's FPR with no negatives. A metric returns NaN there; the count is reported so a
  reader sees how much of the distribution the interval rests on.
* **Identical models give exactly 0**: the delta is computed as a subtraction of the same float
  from itself on the same indices, so a parent diffed with itself shows ``delta == 0.0`` and the
  interval ``[0.0, 0.0]``, not a tiny rounding residue. The tests hold this exactly.
* Metric functions are plain ``(y_true, predictions, groups) -> float`` on the resampled rows, so
  the diff can carry any audited number; the functions below cover accuracy, AUROC, per-group
  selection rate / TPR / FPR (:func:`group_rate`) and the equalized-odds difference.

:func:`align_rows` refuses two runs whose test rows are unrelated (a clear
:class:`RowMismatchError`, a :class:`~ethos.errors.DataError`), and otherwise gives the index
arrays that put the parent's test rows side by side in both runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ethos.errors import DataError
from ethos.stats.bootstrap import percentile_interval, rng_for

CHUNK_CELLS = 2_000_000
"""Index matrices are drawn in chunks of about this many (resample, row) cells (16 MB)."""
SHOWN_IDS = 5
"""How many differing row ids an error message quotes."""


class RowMismatchError(DataError):
    """Two runs whose test rows cannot be paired (different rows, duplicates, or none shared)."""


@dataclass(frozen=True)
class Predictions:
    """One model's outputs on the test rows: decided labels and/or scores (P(positive)).

    Either may be ``None`` when the model (or the metric) has no use for it; a metric that needs
    a missing one raises ``ValueError``.
    """

    labels: np.ndarray | None = None
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.labels is None and self.scores is None:
            raise ValueError("Predictions need labels, scores or both")
        labels, scores = self.labels, self.scores
        if labels is not None and scores is not None and len(labels) != len(scores):
            raise ValueError(f"labels ({len(labels)} rows) and scores ({len(scores)} rows) differ")

    def __len__(self) -> int:
        return len(self.labels if self.labels is not None else self.scores)  # type: ignore[arg-type]

    def take(self, index: np.ndarray) -> Predictions:
        """The predictions of rows ``index`` (with repeats, for a resample)."""
        return Predictions(
            labels=None if self.labels is None else self.labels[index],
            scores=None if self.scores is None else self.scores[index],
        )


Metric = Callable[[np.ndarray, Predictions, "np.ndarray | None"], float]
"""``metric(y_true, predictions, groups) -> value``, NaN where undefined on these rows."""


@dataclass(frozen=True)
class PairedDelta:
    """One metric of the diff: both runs' values, the change and its paired-bootstrap interval."""

    parent: float
    child: float
    delta: float
    low: float
    high: float
    n_resamples: int
    n_undefined: int
    """Resamples where the metric was undefined for either model (dropped from the interval)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "child": self.child,
            "delta": self.delta,
            "ci95": [self.low, self.high],
            "n_resamples": self.n_resamples,
            "n_undefined": self.n_undefined,
        }


def paired_bootstrap(
    y_true: np.ndarray,
    parent: Predictions,
    child: Predictions,
    metrics: Mapping[str, Metric],
    *,
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, PairedDelta]:
    """Paired bootstrap of ``metric(child) - metric(parent)`` for every metric, on shared rows.

    Row ``i`` of ``y_true``, ``parent``, ``child`` and ``groups`` must be the same test row (use
    :func:`align_rows` first). Each of ``n_resamples`` resamples draws row indices with
    replacement (within each group when ``groups`` is given) and scores both models on exactly
    those rows (Efron & Tibshirani 1993). Deterministic given ``seed``: every metric sees the same
    index draws, whatever the metrics' names or order.
    """
    y_true = np.asarray(y_true)
    _check_lengths(y_true, parent, child, groups)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    names = list(metrics)
    deltas = {name: np.empty(n_resamples) for name in names}
    done = 0
    for index in _index_chunks(groups, len(y_true), n_resamples, rng_for(seed, "paired")):
        for row in index:
            y, g = y_true[row], None if groups is None else groups[row]
            p, c = parent.take(row), child.take(row)
            for name in names:
                deltas[name][done] = metrics[name](y, c, g) - metrics[name](y, p, g)
            done += 1
    out = {}
    for name in names:
        parent_value = float(metrics[name](y_true, parent, groups))
        child_value = float(metrics[name](y_true, child, groups))
        low, high = percentile_interval(deltas[name], confidence=confidence)
        out[name] = PairedDelta(
            parent=parent_value,
            child=child_value,
            delta=child_value - parent_value,
            low=low,
            high=high,
            n_resamples=n_resamples,
            n_undefined=int(np.count_nonzero(~np.isfinite(deltas[name]))),
        )
    return out


def align_rows(
    parent_ids: np.ndarray,
    child_ids: np.ndarray,
    *,
    parent_name: str = "parent",
    child_name: str = "child",
) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(into_parent, into_child)`` that line up the parent's test rows in both runs.

    A child's test part is the parent's plus held-out feedback (issue 17), so every parent row id
    must appear in the child; the child's extra rows are left out of the pairing. Refuses, with a
    :class:`RowMismatchError` that says what differs, when ids repeat within a run or when any
    parent row is missing from the child (a diff of two unrelated runs, or a parent whose data
    changed): a paired comparison on different rows would be meaningless, not merely noisy.
    """
    parent_ids, child_ids = np.asarray(parent_ids), np.asarray(child_ids)
    for name, ids in ((parent_name, parent_ids), (child_name, child_ids)):
        _refuse_duplicates(name, ids)
    if parent_ids.size == 0:
        raise RowMismatchError(f"the {parent_name} run has no test rows to compare")
    order = np.argsort(child_ids, kind="stable")
    sorted_ids = child_ids[order]
    position = np.clip(np.searchsorted(sorted_ids, parent_ids), 0, max(len(sorted_ids) - 1, 0))
    matched = (
        sorted_ids[position] == parent_ids if sorted_ids.size else np.zeros(parent_ids.size, bool)
    )
    if not matched.all():
        missing = parent_ids[~matched]
        shared = int(matched.sum())
        raise RowMismatchError(
            f"the {parent_name} and {child_name} runs were not tested on the same rows: "
            f"{len(missing)} of the {parent_name}'s {len(parent_ids)} test rows are not among the "
            f"{child_name}'s {len(child_ids)} ({shared} shared), e.g. {_quote(missing)}",
            hint=f"diff a {child_name} with the run it was trained from; its test part must "
            f"contain every test row of the {parent_name}",
        )
    return np.arange(len(parent_ids)), order[position]


# ---- metrics: thin functions over one binary-rates core ---------------------------------------


def accuracy(y_true: np.ndarray, predictions: Predictions, groups: np.ndarray | None) -> float:
    """Share of rows whose decided label equals the true label."""
    return float(np.mean(_labels(predictions) == y_true))


def auroc(y_true: np.ndarray, predictions: Predictions, groups: np.ndarray | None) -> float:
    """scikit-learn's ``roc_auc_score`` of the scores; NaN when the rows hold one true class."""
    from sklearn.metrics import roc_auc_score  # only when asked: sklearn costs ~1 s to import

    if predictions.scores is None:
        raise ValueError("auroc needs scores (P(positive)); these predictions have labels only")
    if np.unique(y_true).size < 2:
        return float("nan")
    return float(roc_auc_score(y_true, predictions.scores))


def group_rate(rate: str, group: int, *, positive: Any = 1) -> Metric:
    """A metric: one group's ``"selection"`` rate, ``"tpr"`` or ``"fpr"`` of the decided labels.

    Selection rate P(ŷ=+), TPR P(ŷ=+|y=+), FPR P(ŷ=+|y=-), computed on that group's rows.

    NaN when the group has no rows (or, for TPR/FPR, no rows of the conditioning class).
    """
    _check_rate_name(rate)

    def metric(y_true: np.ndarray, predictions: Predictions, groups: np.ndarray | None) -> float:
        if groups is None:
            raise ValueError(f"the {rate} of group {group} needs group codes")
        member = groups == group
        return _rate(rate, y_true[member] == positive, _labels(predictions)[member] == positive)

    return metric


def equalized_odds_difference(*, positive: Any = 1, among: Sequence[int] | None = None) -> Metric:
    """A metric: ``max(max_g TPR_g - min_g TPR_g, max_g FPR_g - min_g FPR_g)`` (Hardt et al. 2016).

    The definition of fairlearn's ``equalized_odds_difference`` (method "between_groups"). Groups
    whose TPR or FPR is undefined in these rows are left out of that gap; NaN when fewer than two
    groups have both rates defined. ``among``: only these group codes are compared (the audit
    leaves groups below its minimum size out of a disparity; a paired diff must too).
    """

    def metric(y_true: np.ndarray, predictions: Predictions, groups: np.ndarray | None) -> float:
        if groups is None:
            raise ValueError("equalized_odds_difference needs group codes")
        actual, decided = y_true == positive, _labels(predictions) == positive
        compared = np.unique(groups) if among is None else np.intersect1d(np.unique(groups), among)
        gaps = []
        for rate in ("tpr", "fpr"):
            values = np.array(
                [_rate(rate, actual[groups == g], decided[groups == g]) for g in compared]
            )
            values = values[np.isfinite(values)]
            if values.size < 2:
                return float("nan")
            gaps.append(float(values.max() - values.min()))
        return max(gaps)

    return metric


def _rate(rate: str, actual: np.ndarray, decided: np.ndarray) -> float:
    """Selection rate, TPR or FPR from boolean arrays; NaN with no rows to condition on."""
    if rate == "selection":
        rows = np.ones_like(actual, dtype=bool)
    else:
        rows = actual if rate == "tpr" else ~actual
    count = int(rows.sum())
    return float(decided[rows].sum() / count) if count else float("nan")


def _check_rate_name(rate: str) -> None:
    if rate not in ("selection", "tpr", "fpr"):
        raise ValueError(f"rate must be 'selection', 'tpr' or 'fpr', got {rate!r}")


def _labels(predictions: Predictions) -> np.ndarray:
    if predictions.labels is None:
        raise ValueError("this metric needs decided labels; these predictions have scores only")
    return predictions.labels


# ---- resampling and checks --------------------------------------------------------------------


def _index_chunks(
    groups: np.ndarray | None, n_rows: int, n_resamples: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Index matrices of shape ``(chunk, n_rows)``, stratified by group when groups are given.

    Within a resample, columns of group g are a draw with replacement from g's rows, so every
    resample keeps each group's size.
    """
    strata = [np.arange(n_rows)] if groups is None else _strata(groups)
    chunk = max(1, CHUNK_CELLS // max(n_rows, 1))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        yield np.concatenate(
            [rows[rng.integers(0, len(rows), size=(size, len(rows)))] for rows in strata], axis=1
        )


def _strata(groups: np.ndarray) -> list[np.ndarray]:
    """Row indices of each group, groups in sorted code order (so the draws are reproducible)."""
    return [np.flatnonzero(groups == g) for g in np.unique(groups)]


def _check_lengths(
    y_true: np.ndarray, parent: Predictions, child: Predictions, groups: np.ndarray | None
) -> None:
    sizes = {"y_true": len(y_true), "parent": len(parent), "child": len(child)}
    if groups is not None:
        sizes["groups"] = len(groups)
    if len(set(sizes.values())) != 1:
        raise RowMismatchError(
            "paired rows must line up one to one, got "
            + ", ".join(f"{k}: {v} rows" for k, v in sizes.items()),
            hint="align both runs' test rows with ethos.stats.paired.align_rows first",
        )
    if len(y_true) == 0:
        raise RowMismatchError("no shared test rows to compare")


def _refuse_duplicates(name: str, ids: np.ndarray) -> None:
    unique, counts = np.unique(ids, return_counts=True)
    if unique.size != ids.size:
        raise RowMismatchError(
            f"the {name} run's test row ids repeat ({ids.size - unique.size} duplicates, "
            f"e.g. {_quote(unique[counts > 1])}), so its rows cannot be paired",
            hint="row ids must identify each test row once",
        )


def _quote(ids: np.ndarray) -> str:
    shown = ", ".join(repr(x.item() if hasattr(x, "item") else x) for x in ids[:SHOWN_IDS])
    return shown + (", ..." if len(ids) > SHOWN_IDS else "")
