"""Baselines on the same split, so a user sees at once whether fine-tuning earned its cost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from ethos.stats.informativeness import judge
from ethos.training.metrics import classification_metrics


def _joined(texts: Sequence[str], pairs: Sequence[str] | None) -> list[str]:
    if pairs is None:
        return list(texts)
    return [f"{a} [SEP] {b}" for a, b in zip(texts, pairs, strict=True)]


def majority_baseline(
    y_train: np.ndarray, y_eval: np.ndarray, label_names: Sequence[str]
) -> dict[str, Any]:
    """Always predict the most frequent training class."""
    counts = np.bincount(y_train, minlength=len(label_names))
    probabilities = np.tile(counts / counts.sum(), (len(y_eval), 1))
    return classification_metrics(y_eval, probabilities, label_names)


def tfidf_baseline(
    train: tuple[Sequence[str], Sequence[str] | None, np.ndarray],
    evaluate: tuple[Sequence[str], Sequence[str] | None, np.ndarray],
    label_names: Sequence[str],
    *,
    seed: int,
) -> dict[str, Any]:
    """TF-IDF word 1-2 grams + logistic regression, fitted on the training part."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(max_iter=2000, C=4.0, random_state=seed),
    )
    model.fit(_joined(train[0], train[1]), train[2])
    raw = model.predict_proba(_joined(evaluate[0], evaluate[1]))
    probabilities = np.zeros((len(evaluate[2]), len(label_names)))
    probabilities[:, model.classes_] = raw
    return classification_metrics(evaluate[2], probabilities, label_names)


def informativeness(
    y_eval: np.ndarray,
    probabilities: np.ndarray,
    label_names: Sequence[str],
    *,
    majority: dict[str, Any] | None = None,
    y_pred: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Whether the model beats its baselines on a held-out part: ``{"informative", "reasons"}``.

    The audit's rule (:func:`ethos.stats.informativeness.judge`), so metrics.json and
    audit.json agree: not informative when every row gets one class, when accuracy is not above
    the majority baseline (``majority``: this part's :func:`majority_baseline` metrics), or when
    AUROC's 95 % bootstrap interval includes 0.5. ``y_pred`` defaults to the most probable class,
    as in :func:`~ethos.training.metrics.classification_metrics`.
    """
    k = len(label_names)
    decided = probabilities.argmax(axis=1) if y_pred is None else y_pred
    section = judge(
        np.asarray(y_eval, dtype=np.int64),
        np.asarray(decided, dtype=np.int64),
        n_classes=k,
        names=[str(n) for n in label_names],
        y_prob=probabilities[:, 1] if k == 2 else probabilities,
        baselines={"majority": majority} if majority else None,
        seed=seed,
    )
    return {"informative": section["informative"], "reasons": section["reasons"]}
