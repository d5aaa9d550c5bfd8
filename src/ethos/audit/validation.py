"""Turn what a user hands the audit into clean arrays, or say precisely what is wrong.

Every public audit function goes through these helpers, so the same mistake gets the same
:class:`~ethos.audit.errors.AuditError` message wherever it is made: arrays of different lengths,
empty input, a sensitive attribute with a single value, probabilities outside [0, 1], labels outside
the label space of the predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ethos.audit.errors import AuditError

MISSING_GROUP = "<NA>"
"""The group value under which rows with a missing sensitive attribute are reported."""

INTERSECTION_JOIN = "*"
"""Joins attribute names and group values of an intersection: ``"race*sex"``, ``"Asian*Female"``."""


@dataclass(frozen=True)
class Labels:
    """Labels encoded as integer codes into ``classes``.

    For a binary task ``classes`` is ``[negative, positive]`` so code 1 is the positive outcome
    (the one whose rate is the *selection rate*); for a multiclass task ``classes`` is sorted and
    every class is audited one-vs-rest.
    """

    y_true: np.ndarray
    y_pred: np.ndarray | None
    classes: list[Any]

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2


def as_1d(name: str, values: Any) -> np.ndarray:
    """Return ``values`` as a 1-D numpy array, or raise :class:`AuditError`."""
    if values is None:
        raise AuditError(f"{name} is missing", hint=f"pass {name} as a 1-D array-like")
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise AuditError(f"{name} must be 1-D, got a table with {values.shape[1]} columns")
        values = values.iloc[:, 0]
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise AuditError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def check_lengths(**arrays: Any) -> int:
    """Check that all arrays have the same, non-zero length, and return it."""
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise AuditError(
            f"length mismatch: {detail} rows",
            hint="pass one prediction, label, score and sensitive-feature row per example",
        )
    n = next(iter(lengths.values()), 0)
    if n == 0:
        raise AuditError("empty input: there are no examples to audit")
    return n


def _sorted_labels(values: np.ndarray) -> list[Any]:
    try:
        return sorted(pd.unique(values).tolist())
    except TypeError as exc:
        raise AuditError(
            f"labels of mixed types cannot be compared: {pd.unique(values).tolist()[:10]}",
            hint="make y_true and y_pred use the same label type (e.g. all int or all str)",
        ) from exc


def _check_in_space(name: str, values: np.ndarray, space: list[Any]) -> None:
    unknown = sorted(set(pd.unique(values).tolist()) - set(space), key=str)
    if unknown:
        raise AuditError(
            f"{name} contains labels {unknown[:10]} that are not in the label space {space} "
            "of the predictions",
            hint="pass labels= with every class the model can predict, in the model's order",
        )


def encode_labels(
    y_true: Any,
    y_pred: Any = None,
    *,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    n_classes: int | None = None,
) -> Labels:
    """Encode ``y_true`` (and ``y_pred``) as integer codes into a validated label space.

    The label space is ``labels`` when given (the model's classes, in the order of its probability
    columns), else ``range(n_classes)`` when probabilities with ``n_classes`` columns are given,
    else the sorted union of the observed labels. Labels that are a subset of {0, 1} or {-1, 1}
    are binary with positive label 1; two other labels need ``pos_label``.
    """
    true = as_1d("y_true", y_true)
    pred = None if y_pred is None else as_1d("y_pred", y_pred)
    for name, values in (("y_true", true), ("y_pred", pred)):
        if values is not None and pd.isna(values).any():
            raise AuditError(
                f"{name} has {int(pd.isna(values).sum())} missing labels",
                hint="drop the rows without a label (or prediction) before auditing",
            )
    if labels is not None:
        space = list(labels)
    elif n_classes is not None and n_classes > 2:
        space = list(range(n_classes))
    else:
        both = true if pred is None else np.concatenate([true.astype(object), pred.astype(object)])
        space = _sorted_labels(both)
    if len(set(space)) != len(space):
        raise AuditError(f"labels must be distinct, got {space}")
    _check_in_space("y_true", true, space)
    if pred is not None:
        _check_in_space("y_pred", pred, space)
    if n_classes is not None and n_classes > 2 and len(space) != n_classes:
        raise AuditError(
            f"the probabilities have {n_classes} columns but the label space {space} has "
            f"{len(space)} classes",
            hint="pass labels= with one class per probability column, in column order",
        )

    if n_classes is None or n_classes <= 2:
        as_set = set(space)
        if pos_label is not None:
            if pos_label not in as_set and len(as_set) == 2:
                raise AuditError(f"pos_label {pos_label!r} is not one of the labels {space}")
            others = [c for c in space if c != pos_label]
            if len(others) > 1:
                raise AuditError(
                    f"pos_label is only for binary tasks, got {len(space)} labels {space}"
                )
            negative = others[0] if others else None
            space = [negative, pos_label]
        elif as_set <= {0, 1} or as_set <= {-1, 1}:
            space = [0 if as_set <= {0, 1} else -1, 1]
        elif len(as_set) <= 2:
            raise AuditError(
                f"cannot tell which of the labels {space} is the positive outcome",
                hint="pass pos_label= (the favourable or selected outcome)",
            )

    lookup = {label: code for code, label in enumerate(space)}
    true_codes = np.fromiter((lookup[v] for v in true.tolist()), dtype=np.int64, count=len(true))
    pred_codes = (
        None
        if pred is None
        else np.fromiter((lookup[v] for v in pred.tolist()), dtype=np.int64, count=len(pred))
    )
    return Labels(y_true=true_codes, y_pred=pred_codes, classes=space)


def sensitive_frame(sensitive_features: Any, *, n_rows: int | None = None) -> pd.DataFrame:
    """Return the sensitive features as a DataFrame of string columns, one per attribute.

    Accepts a DataFrame, a mapping of attribute name to values, a named Series, or a 1-D array
    (attribute name ``"sensitive_feature"``). Missing values become the group ``"<NA>"``. Every
    attribute must take at least two values, else there is nothing to compare.
    """
    if sensitive_features is None:
        raise AuditError(
            "sensitive_features is missing",
            hint="pass a table with one column per protected attribute (e.g. race, sex)",
        )
    if isinstance(sensitive_features, pd.DataFrame):
        frame = sensitive_features.reset_index(drop=True)
    elif isinstance(sensitive_features, Mapping):
        frame = pd.DataFrame(
            {str(k): list(as_1d(str(k), v)) for k, v in sensitive_features.items()}
        )
    elif isinstance(sensitive_features, pd.Series):
        name = "sensitive_feature" if sensitive_features.name is None else sensitive_features.name
        frame = sensitive_features.reset_index(drop=True).to_frame(name=str(name))
    else:
        frame = pd.DataFrame({"sensitive_feature": as_1d("sensitive_features", sensitive_features)})
    if frame.shape[1] == 0:
        raise AuditError("sensitive_features has no columns")
    if n_rows is not None and len(frame) != n_rows:
        raise AuditError(
            f"length mismatch: sensitive_features has {len(frame)} rows but y_true has {n_rows}",
            hint="pass one sensitive-feature row per example",
        )
    if len(frame) == 0:
        raise AuditError("empty input: there are no examples to audit")
    out = pd.DataFrame(index=range(len(frame)))
    for column in frame.columns:
        values = frame[column]
        text = values.astype(object).where(values.notna(), MISSING_GROUP).map(str)
        if text.nunique() < 2:
            raise AuditError(
                f"sensitive attribute {column!r} has a single value {text.iloc[0]!r}: "
                "there are no groups to compare",
                hint="drop that column or audit on data where the attribute varies",
            )
        out[str(column)] = text.to_numpy(dtype=object)
    return out


def intersect(frame: pd.DataFrame, attributes: Sequence[str]) -> tuple[str, np.ndarray]:
    """Name and values of an intersection of ``attributes`` (``"race*sex"``, ``"Asian*Female"``)."""
    missing = [a for a in attributes if a not in frame.columns]
    if missing:
        raise AuditError(
            f"intersection names unknown attributes {missing}; known: {list(frame.columns)}"
        )
    name = INTERSECTION_JOIN.join(attributes)
    values = frame[attributes[0]].to_numpy(dtype=object)
    for attribute in attributes[1:]:
        # element-wise concatenation of object arrays of str: fast, unlike a row-wise agg
        values = values + INTERSECTION_JOIN + frame[attribute].to_numpy(dtype=object)
    return name, values


def check_probabilities(y_prob: Any, *, n_rows: int) -> np.ndarray:
    """Return probabilities as a float array, 1-D (P(positive)) or 2-D (one column per class).

    A two-column array is reduced to its second column (the positive class). Values must be finite
    and in [0, 1]; rows of a multiclass array must sum to 1 (within 1e-3).
    """
    if y_prob is None:
        raise AuditError("probabilities are missing", hint="pass y_prob (model probabilities)")
    try:
        prob = np.asarray(y_prob, dtype=float)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"probabilities must be numbers: {exc}") from exc
    if prob.ndim == 2 and prob.shape[1] == 1:
        prob = prob[:, 0]
    if prob.ndim not in (1, 2):
        raise AuditError(f"probabilities must be 1-D or 2-D, got shape {prob.shape}")
    check_lengths(y_true=range(n_rows), y_prob=prob)
    if not np.all(np.isfinite(prob)):
        raise AuditError("probabilities contain NaN or infinite values")
    low, high = float(prob.min()), float(prob.max())
    if low < 0.0 or high > 1.0:
        raise AuditError(
            f"scores must be probabilities in [0, 1], got values in [{low:.4g}, {high:.4g}]",
            hint="pass probabilities (e.g. softmax outputs), not logits or decile scores",
        )
    if prob.ndim == 2:
        sums = prob.sum(axis=1)
        worst = float(np.max(np.abs(sums - 1.0)))
        if worst > 1e-3:
            raise AuditError(
                f"each row of probabilities must sum to 1, found a row summing to "
                f"{sums[np.argmax(np.abs(sums - 1.0))]:.4g}",
                hint="apply softmax to the model outputs",
            )
        if prob.shape[1] == 2:
            prob = prob[:, 1]
    return prob


MAX_VALUES_SHOWN = 6
DEFAULT_POSITIVES = ("1", "true", "yes")
"""Outcome values taken as positive when ``--positive`` is not given, best first."""


@dataclass(frozen=True)
class BinaryOutcomes:
    """Labels and decisions of a predictions file as 0/1, and which value meant positive."""

    y_true: np.ndarray
    y_pred: np.ndarray | None
    positive: str
    """The label value counted as positive, as spelled in the file."""
    prediction_positive: str | None
    """The prediction value counted as positive, as spelled in the file (None: no predictions)."""


def outcome_key(value: Any) -> str:
    """How outcome cells are compared: 1, 1.0, "1" and " 1 " match, as do True, "true" and
    "TRUE", and "Yes" and "yes" (files written by different tools spell the same outcome
    differently: a float column from a NaN elsewhere, a boolean column, capitalised words)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip().casefold()


def _spellings(values: pd.Series) -> dict[str, str]:
    """Comparison key -> the first spelling seen, for messages and the audit's meta."""
    spelled: dict[str, str] = {}
    for value in values:
        spelled.setdefault(outcome_key(value), str(value).strip())
    return spelled


def _seen(spelled: dict[str, str]) -> str:
    shown = sorted(spelled.values())
    more = f" and {len(shown) - MAX_VALUES_SHOWN} more" if len(shown) > MAX_VALUES_SHOWN else ""
    return f"{shown[:MAX_VALUES_SHOWN]}{more}"


def binary_outcomes(
    labels: pd.Series,
    predictions: pd.Series | None,
    positive: str | None,
    *,
    label_name: str,
    prediction_name: str | None = None,
) -> BinaryOutcomes:
    """Encode a predictions file's label (and prediction) column as 0/1 decisions.

    ``positive`` names the positive outcome for both columns (``yes`` where both say yes/no), or
    ``LABEL=PREDICTION`` where they use different words (``1=approved``); without it, the label
    value 1/true/yes is positive and the predictions must use the label's values. Every mismatch
    is reported with the values seen in each column, so the fix can be read off the message.
    """
    label_spelled = _spellings(labels)
    if len(label_spelled) != 2:
        raise AuditError(
            f"label column '{label_name}' has {len(label_spelled)} distinct values "
            f"({_seen(label_spelled)}); the predictions audit compares binary decisions",
            hint="audit one outcome against the rest: map the label to two values first",
        )
    label_positive, prediction_positive = _positive_values(positive, label_spelled, label_name)
    y_true = np.array([outcome_key(v) == label_positive for v in labels], dtype=int)
    if predictions is None:
        if prediction_positive is not None:
            raise AuditError(
                f"--positive {positive!r} maps a prediction value, but the decisions come from "
                "a score and a threshold",
                hint=f"pass --positive {label_spelled[label_positive]!r} (the label value)",
            )
        return BinaryOutcomes(y_true, None, label_spelled[label_positive], None)
    assert prediction_name is not None
    pred_spelled = _spellings(predictions)
    chosen = _prediction_positive(
        pred_spelled,
        label_spelled,
        label_positive,
        prediction_positive,
        label_name=label_name,
        prediction_name=prediction_name,
    )
    y_pred = np.array([outcome_key(v) == chosen for v in predictions], dtype=int)
    return BinaryOutcomes(
        y_true, y_pred, label_spelled[label_positive], pred_spelled.get(chosen, chosen)
    )


def _positive_values(
    positive: str | None, label_spelled: dict[str, str], label_name: str
) -> tuple[str, str | None]:
    """(label key, prediction key or None) from ``--positive``: VALUE, or LABEL=PREDICTION."""
    if positive is None:
        found = next((v for v in DEFAULT_POSITIVES if v in label_spelled), None)
        if found is None:
            raise AuditError(
                f"cannot tell which of the label values {_seen(label_spelled)} in "
                f"'{label_name}' is the positive outcome",
                hint="pass --positive VALUE (the favourable or selected outcome)",
            )
        return found, None
    if outcome_key(positive) in label_spelled:
        return outcome_key(positive), None
    label_part, equals, prediction_part = positive.partition("=")
    if equals and outcome_key(label_part) in label_spelled and prediction_part.strip():
        return outcome_key(label_part), outcome_key(prediction_part)
    raise AuditError(
        f"--positive {positive!r} is not a value of label column '{label_name}' "
        f"(values seen: {_seen(label_spelled)})",
        hint="pass one of those values, or LABEL=PREDICTION when the prediction column uses "
        "other words (e.g. --positive 1=approved)",
    )


def _prediction_positive(
    pred_spelled: dict[str, str],
    label_spelled: dict[str, str],
    label_positive: str,
    given: str | None,
    *,
    label_name: str,
    prediction_name: str,
) -> str:
    """The prediction key that means the positive label, checked against the values seen."""
    seen = (
        f"prediction column '{prediction_name}' has {_seen(pred_spelled)}; label column "
        f"'{label_name}' has {_seen(label_spelled)}"
    )
    if given is not None:
        if len(set(pred_spelled) - {given}) > 1:
            raise AuditError(
                f"--positive maps the label value {label_spelled[label_positive]!r} to the "
                f"prediction value {given!r}, but {seen}",
                hint="the prediction column must hold that value and at most one other "
                "(the negative decision)",
            )
        return given
    if set(pred_spelled) <= set(label_spelled):
        return label_positive
    unknown = sorted(pred_spelled[k] for k in set(pred_spelled) - set(label_spelled))
    example = sorted(pred_spelled.values())[0]
    raise AuditError(
        f"prediction values {unknown[:MAX_VALUES_SHOWN]} never occur as labels: {seen}",
        hint="say which prediction value means the positive label "
        f"{label_spelled[label_positive]!r}: --positive "
        f"{label_spelled[label_positive]}=<prediction value> (e.g. "
        f"--positive {label_spelled[label_positive]}={example})",
    )
