"""The privacy check: personal data in the training texts, and membership leakage of the model.

Two parts, each run when the context allows it:

* ``pii`` — a Presidio scan (:mod:`ethos.text.pii`) of a seeded sample of the training texts:
  counts by entity type, the rate of texts with any PII and its 95 % Wilson interval, masked
  examples. Without training texts in ``extras`` the audited texts are scanned instead, and the
  section says so.
* ``membership_inference`` — the loss-threshold attack of Yeom et al. 2018
  (:mod:`ethos.audit.membership`) on training rows (members) against the audited held-out rows
  (non-members): ROC AUC and TPR at 1 % FPR. Skipped, with the reason, without training rows.

``epsilon`` is the run's differential-privacy budget (``extras["dp_epsilon"]``), None for a run
trained without differential privacy, which then carries no formal guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ethos.audit.errors import AuditError
from ethos.audit.membership import Rows, loss_attack
from ethos.text.pii import DEFAULT_ENTITIES, SCORE_THRESHOLD, pii_section

if TYPE_CHECKING:
    from ethos.audit.protocol import AuditContext

PII_SAMPLE = 500
MIA_SAMPLE = 300


def _joined(texts: Sequence[str], pairs: Sequence[str] | None) -> list[str]:
    """One string per row: the text, and its second text on a new line for pair tasks."""
    if pairs is None:
        return [str(t) for t in texts]
    return [f"{t}\n{p}" for t, p in zip(texts, pairs, strict=True)]


def _class_indices(name: str, values: Any, labels: Sequence[Any] | None) -> np.ndarray:
    """``values`` as positions in ``labels`` (the probability columns), or as given if integers."""
    array = np.asarray(values)
    if labels is not None:
        position = {label: i for i, label in enumerate(labels)}
        if all(v in position for v in array.tolist()):
            return np.array([position[v] for v in array.tolist()], dtype=np.int64)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    raise AuditError(
        f"{name} are neither class indices nor values of the label space {list(labels or [])}",
        hint="pass labels as the position of their class in the model's probability columns",
    )


class PrivacyCheck:
    """PII scan of the training texts and a loss-threshold membership-inference attack.

    Options (stored only, scikit-learn style): ``pii_sample`` texts scanned (None: all),
    ``mia_sample`` the most members, and as many non-members, scored; ``entities`` the Presidio
    entity types looked for (default :data:`ethos.text.pii.DEFAULT_ENTITIES`); ``score_threshold``
    the lowest Presidio score counted.

    Section::

        {"pii": {"source": "train" | "audited", "total", "scanned", "texts_with_pii", "rate",
                 "rate_ci95", "estimated_texts_with_pii", "by_entity": {TYPE: n},
                 "entities", "score_threshold", "examples": [masked text]},
         "membership_inference": {"attack", "auc", "tpr_at_1pct_fpr", "tpr_interpolation",
                 "advantage", "n_members", "n_nonmembers", "mean_loss_members",
                 "mean_loss_nonmembers", "nonmembers_from"} | {"skipped": reason},
         "epsilon": float | None, "delta": float | None, "notes": [str]}
    """

    name: str = "privacy"
    requires: tuple[str, ...] = ("texts", "predict_proba", "y_true")

    def __init__(
        self,
        *,
        pii_sample: int | None = PII_SAMPLE,
        mia_sample: int = MIA_SAMPLE,
        entities: Sequence[str] | None = None,
        score_threshold: float = SCORE_THRESHOLD,
    ) -> None:
        self.pii_sample = pii_sample
        self.mia_sample = mia_sample
        self.entities = entities
        self.score_threshold = score_threshold

    def _pii(self, context: AuditContext, notes: list[str]) -> dict[str, Any]:
        extras = context.extras
        train = extras.get("train_texts")
        if train is not None and len(train) > 0:
            texts, source = _joined(train, extras.get("train_pairs")), "train"
        else:
            assert context.texts is not None
            texts, source = _joined(context.texts, extras.get("text_pairs")), "audited"
            notes.append(
                "no training texts were given (extras['train_texts']); the PII scan covers the "
                "audited texts instead"
            )
        if self.pii_sample is not None and self.pii_sample < 1:
            raise AuditError(f"pii_sample must be at least 1 (or None), got {self.pii_sample}")
        section = pii_section(
            texts,
            sample=self.pii_sample,
            seed=context.seed,
            entities=tuple(self.entities) if self.entities is not None else DEFAULT_ENTITIES,
            score_threshold=self.score_threshold,
        )
        if "PERSON" in section["by_entity"] or "LOCATION" in section["by_entity"]:
            notes.append(
                "PERSON and LOCATION come from spaCy's named-entity model, which also tags "
                "capitalised phrases that are not names (e.g. charge descriptions in record "
                "texts); read the masked examples before acting on those counts"
            )
        if section["scanned"] < section["total"]:
            notes.append(
                f"PII counts are from a random sample of {section['scanned']} of "
                f"{section['total']} {source} texts; `ethos data scrub` scans and masks them all"
            )
        return {"source": source, **section}

    def _membership(self, context: AuditContext) -> dict[str, Any]:
        extras = context.extras
        train_texts = extras.get("train_texts")
        if train_texts is None or len(train_texts) == 0:
            return {"skipped": "no training texts in the audit context (extras['train_texts'])"}
        if extras.get("train_labels") is None:
            return {"skipped": "no training labels in the audit context (extras['train_labels'])"}
        assert context.texts is not None and context.predict_proba is not None
        labels = context.labels
        members = Rows(
            list(train_texts),
            extras.get("train_pairs"),
            _class_indices("extras['train_labels']", extras["train_labels"], labels),
        )
        nonmembers = Rows(
            list(context.texts),
            extras.get("text_pairs"),
            _class_indices("y_true", context.y_true, labels),
        )
        result = loss_attack(
            context.predict_proba,
            members,
            nonmembers,
            sample=self.mia_sample,
            seed=context.seed,
        )
        return {
            "attack": "loss threshold (Yeom et al. 2018), score = -cross-entropy",
            **result,
            "tpr_interpolation": "linear between the ROC points around FPR 0.01, taking the "
            "highest TPR at tied FPRs",
            "nonmembers_from": str(extras.get("part", "audited")),
        }

    def run(self, context: AuditContext) -> dict[str, Any]:
        context.require(self)
        notes: list[str] = []
        pii = self._pii(context, notes)
        membership = self._membership(context)
        if "skipped" in membership:
            notes.append(f"membership inference skipped: {membership['skipped']}")
        else:
            notes.append(
                f"membership-inference AUC {membership['auc']:.3f}: 0.5 means the model's loss "
                "does not tell training rows from held-out rows, 1.0 that it always does"
            )
            if membership["n_nonmembers"] < 100:
                notes.append(
                    f"only {membership['n_nonmembers']} non-members: the ROC moves in FPR steps "
                    "of more than 1 %, so TPR at 1 % FPR is interpolated from its first step"
                )
        epsilon = context.extras.get("dp_epsilon")
        if epsilon is None:
            notes.append(
                "the run was not trained with differential privacy: epsilon is None and there "
                "is no formal bound on what the model reveals about a training row"
            )
        return {
            "pii": pii,
            "membership_inference": membership,
            "epsilon": None if epsilon is None else float(epsilon),
            "delta": context.extras.get("dp_delta"),
            "notes": notes,
        }
