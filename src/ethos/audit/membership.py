"""Membership inference: does the model's loss tell training rows from rows it never saw?

The loss-threshold attack of Yeom, Giacomelli, Fredrikson & Jha 2018, "Privacy Risk in Machine
Learning: Analyzing the Connection to Overfitting" (CSF 2018): the attacker guesses "member" when
the model's loss on an example is below a threshold. Scoring each example by ``-loss`` and sweeping
the threshold gives a ROC curve over members (the positives) and non-members; its AUC is the
attack's overall success (0.5 = chance) and, following Carlini et al. 2022, "Membership Inference
Attacks From First Principles" (IEEE S&P), its true-positive rate at a 1 % false-positive rate says
how many members can be identified confidently. The loss is the per-example cross-entropy
``-log p(y_i | x_i)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from ethos.audit.errors import AuditError
from ethos.audit.validation import check_probabilities

PROB_FLOOR = 1e-12
"""Probabilities are clipped to at least this before the log, so a loss is at most ~27.6."""


@dataclass(frozen=True)
class Rows:
    """Examples to score: texts, optional second texts (pair tasks) and class indices."""

    texts: Sequence[str]
    pairs: Sequence[str] | None
    labels: np.ndarray

    def take(self, index: np.ndarray) -> Rows:
        return Rows(
            [self.texts[i] for i in index],
            None if self.pairs is None else [self.pairs[i] for i in index],
            self.labels[index],
        )


def per_example_loss(probabilities: Any, labels: Any) -> np.ndarray:
    """Cross-entropy of each row: ``-log max(p[i, y_i], 1e-12)``.

    ``probabilities`` is (n, K) with rows over classes in column order (or (n,) P(class 1) for a
    binary task); ``labels`` are class indices into those columns.
    """
    y = np.asarray(labels)
    prob = check_probabilities(probabilities, n_rows=len(y))
    if prob.ndim == 1:
        prob = np.column_stack([1.0 - prob, prob])
    k = prob.shape[1]
    if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= k):
        raise AuditError(
            f"labels must be class indices 0..{k - 1} into the probability columns",
            hint="encode labels as the position of their class in the model's label space",
        )
    picked = prob[np.arange(len(y)), y.astype(np.int64)]
    return -np.log(np.clip(picked, PROB_FLOOR, 1.0))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """TPR of a ROC curve at false-positive rate ``target``, linearly interpolated.

    At each distinct FPR the highest TPR is kept (the upper envelope; vertical steps come from
    tied scores), then TPR is interpolated linearly between the two ROC points around ``target``:
    the rate an attacker reaches by randomising between those two thresholds. With ``m``
    non-members the curve moves in FPR steps of 1/m, so at 1 % the value rests on ~m/100 of them.
    """
    distinct, inverse = np.unique(fpr, return_inverse=True)
    best = np.full(len(distinct), -np.inf)
    np.maximum.at(best, inverse, tpr)
    return float(np.interp(target, distinct, best))


def attack_from_losses(
    member_losses: Any, nonmember_losses: Any, *, fpr_target: float = 0.01
) -> dict[str, Any]:
    """The loss-threshold attack's ROC summary, scoring each example by ``-loss``.

    Returns ``{"auc", "tpr_at_1pct_fpr", "advantage", "n_members", "n_nonmembers",
    "mean_loss_members", "mean_loss_nonmembers"}``: ``auc`` from scikit-learn's ``roc_auc_score``
    (ties count one half), ``tpr_at_1pct_fpr`` from :func:`tpr_at_fpr` at ``fpr_target`` and
    ``advantage`` = max over thresholds of TPR - FPR (Yeom et al.'s membership advantage).
    """
    members = np.asarray(member_losses, dtype=float).ravel()
    nonmembers = np.asarray(nonmember_losses, dtype=float).ravel()
    if len(members) == 0 or len(nonmembers) == 0:
        raise AuditError(
            f"membership inference needs members and non-members, got {len(members)} and "
            f"{len(nonmembers)}"
        )
    if not (np.isfinite(members).all() and np.isfinite(nonmembers).all()):
        raise AuditError("membership inference got non-finite losses")
    is_member = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    score = -np.r_[members, nonmembers]
    fpr, tpr, _ = roc_curve(is_member, score, drop_intermediate=False)
    return {
        "auc": float(roc_auc_score(is_member, score)),
        "tpr_at_1pct_fpr": tpr_at_fpr(fpr, tpr, fpr_target),
        "advantage": float(np.max(tpr - fpr)),
        "n_members": len(members),
        "n_nonmembers": len(nonmembers),
        "mean_loss_members": float(members.mean()),
        "mean_loss_nonmembers": float(nonmembers.mean()),
    }


def _sample(rows: Rows, size: int, rng: np.random.Generator) -> Rows:
    n = len(rows.texts)
    if size >= n:
        return rows
    return rows.take(np.sort(rng.choice(n, size=size, replace=False)))


def _losses(predict: Callable[..., Any], rows: Rows) -> np.ndarray:
    texts = list(rows.texts)
    prob = predict(texts) if rows.pairs is None else predict(texts, list(rows.pairs))
    return per_example_loss(prob, rows.labels)


def loss_attack(
    predict_proba: Callable[..., Any],
    members: Rows,
    nonmembers: Rows,
    *,
    sample: int = 300,
    seed: int = 0,
    fpr_target: float = 0.01,
) -> dict[str, Any]:
    """Run the loss-threshold attack with the model behind ``predict_proba``.

    ``min(sample, members, non-members)`` rows are drawn from each side without replacement by
    ``numpy.random.default_rng(seed)``: balanced, so the model scores at most twice the held-out
    rows; :func:`attack_from_losses` summarises the ROC. ``predict_proba(texts)`` (or
    ``predict_proba(texts, pairs)`` for pair tasks) must return (n, K) class probabilities.
    """
    if sample < 1:
        raise AuditError(f"the membership-inference sample must be at least 1, got {sample}")
    for name, rows in (("members", members), ("non-members", nonmembers)):
        if len(rows.labels) != len(rows.texts) or (
            rows.pairs is not None and len(rows.pairs) != len(rows.texts)
        ):
            raise AuditError(f"the {name}' texts, pairs and labels differ in length")
        if len(rows.texts) == 0:
            raise AuditError(f"membership inference needs {name}, but there are none")
    size = min(sample, len(members.texts), len(nonmembers.texts))
    rng = np.random.default_rng(seed)
    chosen_members = _sample(members, size, rng)
    chosen_nonmembers = _sample(nonmembers, size, rng)
    return attack_from_losses(
        _losses(predict_proba, chosen_members),
        _losses(predict_proba, chosen_nonmembers),
        fpr_target=fpr_target,
    )
