"""Within-session evaluation of a decoder: stratified k-fold CV and a permutation test.

Metrics are computed on out-of-fold predictions (every trial predicted by a model that never saw
it): accuracy; Cohen's kappa ``κ = (p_o - p_e) / (1 - p_e)`` (Cohen 1960, the BCI Competition
IV metric); ROC-AUC (binary, or one-vs-rest macro average for more classes; Hand & Till 2001).
Chance level is tested, not assumed: the permutation test (Ojala & Garriga 2010, JMLR 11:1833)
refits the decoder on label permutations and reports ``p = (1 + #{perm ≥ observed}) / (1 + n)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, permutation_test_score

from ethos.neuro.errors import NeuroError
from ethos.neuro.features import validate_signals


@dataclass
class DecodingResult:
    """Out-of-fold scores of one decoder on one session."""

    decoder: str
    accuracy: float
    kappa: float
    roc_auc: float
    fold_accuracies: list[float]
    confusion: NDArray[np.int64]
    class_names: tuple[str, ...]
    chance_accuracy: float
    permutation_p: float | None = None
    permutation_scores: list[float] = field(default_factory=list)

    @property
    def significant(self) -> bool | None:
        """Above chance at the 5 % level, or None when no permutation test was run."""
        return None if self.permutation_p is None else self.permutation_p < 0.05

    def summary(self) -> dict[str, Any]:
        """Scalars for tables and JSON."""
        return {
            "decoder": self.decoder,
            "accuracy": round(self.accuracy, 4),
            "accuracy_sd": round(float(np.std(self.fold_accuracies)), 4),
            "kappa": round(self.kappa, 4),
            "roc_auc": round(self.roc_auc, 4),
            "chance_accuracy": round(self.chance_accuracy, 4),
            "permutation_p": None if self.permutation_p is None else round(self.permutation_p, 4),
        }

    def __repr__(self) -> str:
        perm = "" if self.permutation_p is None else f", permutation p={self.permutation_p:.3g}"
        return (
            f"<DecodingResult {self.decoder}: accuracy {self.accuracy:.3f} "
            f"(chance {self.chance_accuracy:.3f}), kappa {self.kappa:.3f}, "
            f"ROC-AUC {self.roc_auc:.3f}{perm}>"
        )


def evaluate_decoder(
    decoder: Any,
    X: Any,
    y: Any,
    *,
    name: str = "decoder",
    class_names: tuple[str, ...] | None = None,
    n_splits: int = 5,
    n_permutations: int = 0,
    seed: int = 0,
) -> DecodingResult:
    """Stratified ``n_splits``-fold CV of an unfitted decoder; optional permutation test."""
    x = validate_signals(X, where="evaluate_decoder")
    labels = np.asarray(y)
    if labels.shape != (x.shape[0],):
        raise NeuroError(f"evaluate_decoder: {labels.shape[0]} labels for {x.shape[0]} epochs")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise NeuroError("evaluate_decoder: need at least two classes")
    if counts.min() < n_splits:
        raise NeuroError(
            f"evaluate_decoder: the smallest class has {counts.min()} epochs, fewer than "
            f"{n_splits} folds",
            hint="record more trials or lower n_splits",
        )
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    proba = cross_val_predict(clone(decoder), x, labels, cv=cv, method="predict_proba")
    predicted = classes[proba.argmax(axis=1)]
    folds = [
        float(accuracy_score(labels[test], predicted[test])) for _, test in cv.split(x, labels)
    ]
    if len(classes) == 2:
        auc = roc_auc_score(labels, proba[:, 1])
    else:
        auc = roc_auc_score(labels, proba, multi_class="ovr", average="macro", labels=classes)
    result = DecodingResult(
        decoder=name,
        accuracy=float(accuracy_score(labels, predicted)),
        kappa=float(cohen_kappa_score(labels, predicted)),
        roc_auc=float(auc),
        fold_accuracies=folds,
        confusion=confusion_matrix(labels, predicted, labels=classes),
        class_names=class_names or tuple(str(c) for c in classes),
        chance_accuracy=float(counts.max() / counts.sum()),
    )
    if n_permutations > 0:
        _, perm_scores, p_value = permutation_test_score(
            clone(decoder), x, labels, cv=cv, n_permutations=n_permutations,
            random_state=seed, scoring="accuracy",
        )  # fmt: skip
        result.permutation_p = float(p_value)
        result.permutation_scores = [float(s) for s in perm_scores]
    return result
