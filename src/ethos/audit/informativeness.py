"""Is the model better than a constant? The informativeness check, run before every other screen.

Why. A model that predicts the majority class for every row looks harmless to the other screens:
its calibration error is small (it states the base rate, which is right on average), no
perturbation flips it (it never changes its mind), and its fairness gaps are 0 or undefined
(every group is treated alike, i.e. not at all). Those numbers are true but say nothing about the
model, so they must not read as green, and a policy must not pass it.

The rule and its statistics are in :mod:`ethos.stats.informativeness` (training records the same
verdict in metrics.json); this module validates and encodes the audit's inputs and wraps the rule
in the check protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ethos.audit.validation import as_1d, check_lengths, encode_labels
from ethos.stats.informativeness import RULE, judge

if TYPE_CHECKING:
    from ethos.audit.protocol import AuditContext

NOT_MEANINGFUL = "not meaningful (model not informative)"
"""What the fairness, calibration and robustness screens say for a model that is not informative."""
__all__ = [
    "NOT_MEANINGFUL",
    "RULE",
    "InformativenessCheck",
    "informativeness_section",
    "is_not_informative",
]


def informativeness_section(
    y_true: Any,
    y_pred: Any,
    *,
    y_prob: Any = None,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    label_names: Sequence[str] | None = None,
    baselines: Mapping[str, Any] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The informativeness section (see the module docstring for the rule).

    ``baselines`` is metrics.json's ``baselines`` reduced to the audited part
    (``{"majority": {"accuracy": ...}, "tfidf_logreg": {"accuracy": ..., "auroc": ...}}``);
    without it the majority baseline is the audited rows' own. Shape::

        {"informative", "reasons", "rule", "rows", "predicted_classes", "constant_prediction",
         "accuracy", "majority_accuracy", "majority": {"audited_rows", "recorded"},
         "beats_majority", "auroc": {"value", "ci_low", "ci_high", "above_chance", "scores"},
         "tfidf_logreg": {"accuracy", "auroc"} (when recorded), "n_bootstrap", "confidence"}
    """
    true = as_1d("y_true", y_true)
    pred = as_1d("y_pred", y_pred)
    check_lengths(y_true=true, y_pred=pred)
    n_classes = None
    if y_prob is not None and np.ndim(y_prob) == 2 and np.shape(y_prob)[1] > 2:
        n_classes = int(np.shape(y_prob)[1])
    encoded = encode_labels(true, pred, labels=labels, pos_label=pos_label, n_classes=n_classes)
    assert encoded.y_pred is not None
    k = len(encoded.classes)
    names = [str(c) for c in (label_names if label_names is not None else encoded.classes)]
    codes, predicted = encoded.y_true, encoded.y_pred
    return judge(
        codes,
        predicted,
        n_classes=k,
        names=names,
        y_prob=y_prob,
        baselines=baselines,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
    )


def is_not_informative(audit: Mapping[str, Any]) -> bool:
    """True when the audit's informativeness section says the model is not informative (an
    audit without the section, written before the check existed, is not judged here)."""
    section = audit.get("informativeness")
    return isinstance(section, Mapping) and section.get("informative") is False


class InformativenessCheck:
    """The informativeness check: :func:`informativeness_section` on an :class:`AuditContext`.

    Reads ``extras["baselines"]`` (metrics.json's baselines for the audited part) and
    ``extras["label_names"]`` when present; a predictions-file audit has neither and compares with
    the audited rows' majority class only.
    """

    name: str = "informativeness"
    requires: tuple[str, ...] = ("y_true", "y_pred")

    def __init__(self, *, n_bootstrap: int = 1000, confidence: float = 0.95) -> None:
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence

    def run(self, context: AuditContext) -> dict[str, Any]:
        context.require(self)
        names = context.extras.get("label_names")
        return informativeness_section(
            context.y_true,
            context.y_pred,
            y_prob=context.y_prob,
            labels=context.labels,
            pos_label=context.pos_label,
            label_names=names if names is not None and context.labels is not None else None,
            baselines=context.extras.get("baselines"),
            n_bootstrap=self.n_bootstrap,
            confidence=self.confidence,
            seed=context.seed,
        )
