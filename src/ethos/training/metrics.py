"""Classification metrics reported for every run (scikit-learn definitions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, roc_auc_score


def classification_metrics(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    label_names: Sequence[str],
    y_pred: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1, and AUROC (binary; macro OvR else).

    Decisions default to the most probable class; post-processed runs pass their own, so the
    reported accuracy is that of the decisions made (AUROC is always the scores').
    """
    if y_pred is None:
        y_pred = probabilities.argmax(axis=1)
    labels = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    result: dict[str, Any] = {
        "count": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
        "auroc": None,
    }
    present = np.unique(y_true)
    if len(present) == len(label_names) == 2:
        result["auroc"] = float(roc_auc_score(y_true, probabilities[:, 1]))
    elif len(present) == len(label_names) > 2:
        result["auroc"] = float(
            roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro", labels=labels)
        )
    return result
