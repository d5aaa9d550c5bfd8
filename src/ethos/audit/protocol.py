"""The one contract every audit check follows (the registry is :mod:`ethos.audit.registry`).

A check is an object with a ``name``, a ``requires`` tuple naming the :class:`AuditContext` fields
it needs, and ``run(context) -> dict`` returning its JSON-able section of the audit. Its constructor
only stores options (scikit-learn style); all validation happens in ``run``, which raises
:class:`~ethos.audit.errors.AuditError` for unusable input. A check must be deterministic: the same
context (including ``seed``) gives the same section.

Adding a check is one file defining the class plus one line in
:data:`ethos.audit.registry.CHECKS`; the parametrised test
``tests/audit/test_audit_protocol.py`` then runs it with the rest of the family.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ethos.audit.errors import AuditError


@dataclass(frozen=True)
class AuditContext:
    """Everything a check may look at. Only what a check lists in ``requires`` must be set.

    Attributes:
        y_true: true labels, one per example.
        y_pred: predicted labels.
        y_prob: model probabilities: P(positive) of shape (n,) for a binary task, or (n, K) with
            one column per class in the order of ``labels``.
        groups: sensitive attributes, one column per attribute (race, sex, ...), a row per example.
        texts: the model inputs as text, for checks that perturb or explain inputs.
        labels: the model's label space in probability-column order (default: inferred).
        pos_label: the favourable / selected outcome of a binary task (default: 1).
        seed: the seed every randomised check uses.
        predict_proba: a hook ``texts -> (n, K) probabilities`` for checks that query the model
            (robustness, explanations, membership inference).
        model: the model object itself, for checks that need more than ``predict_proba``.
        extras: anything else a later check needs (training texts for a privacy attack, ...).
    """

    y_true: Any = None
    y_pred: Any = None
    y_prob: Any = None
    groups: pd.DataFrame | None = None
    texts: Sequence[str] | None = None
    labels: Sequence[Any] | None = None
    pos_label: Any = None
    seed: int = 0
    predict_proba: Callable[[Sequence[str]], np.ndarray] | None = None
    model: Any = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    def missing(self, check: Check) -> list[str]:
        """The fields ``check`` requires that this context does not have."""
        return [f for f in check.requires if getattr(self, f, None) is None]

    def require(self, check: Check) -> None:
        """Raise :class:`AuditError` if ``check`` cannot run on this context."""
        absent = self.missing(check)
        if absent:
            raise AuditError(
                f"the {check.name} check needs {', '.join(absent)}, which the audit was not given",
                hint=f"pass {', '.join(absent)} to the audit, or leave out the {check.name} check",
            )


@runtime_checkable
class Check(Protocol):
    """An audit check: a name, the context fields it needs, and a deterministic ``run``."""

    name: str
    requires: tuple[str, ...]

    def run(self, context: AuditContext) -> dict[str, Any]:
        """Return this check's JSON-able section (pass it through :func:`to_jsonable`)."""
        ...


def to_jsonable(value: Any) -> Any:
    """Return ``value`` with numpy scalars and arrays made plain, tuples made lists, NaN made None.

    The result passes ``json.dumps(..., allow_nan=False)``; infinities are an error because no
    audit number should be infinite.
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise AuditError(f"an audit value is infinite ({value}); this is a bug in the check")
    return value
