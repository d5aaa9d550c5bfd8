"""Group fairness: per-group metrics, disparities with bootstrap intervals, and the JSON section.

Three layers, each thin on top of the one below:

* :func:`group_metrics` -- one row per group (count, base rate, selection rate, accuracy, TPR, FPR,
  FNR, PPV, NPV and, with scores, AUROC), computed by fairlearn's ``MetricFrame``.
* the disparity functions (:data:`DISPARITIES`) -- each a one-line formula over per-group rates,
  vectorised so the same function gives the point value and 1000 bootstrap values at once; the rates
  come from the hand-written confusion-count core in :mod:`ethos.stats.bootstrap` (see there why).
* :func:`disparities` and :func:`fairness_section` -- intervals, intersections, minimum group size,
  multiclass one-vs-rest and the four-fifths screen, as JSON-able dicts.

Conventions. A *group* is a value of a sensitive attribute; an *intersection* of attributes is
named by joining them with ``*`` (attribute ``"race*sex"``, group ``"African-American*Male"``).
The positive label (code 1) is the *selected* outcome whose rate is the selection rate. Rates with
an empty denominator (TPR of a group with no positives) are NaN, never an error; gaps and ratios
are taken over the groups where the rate is defined and are NaN when fewer than two define it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, selection_rate
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

from ethos.audit.errors import AuditError
from ethos.audit.validation import (
    Labels,
    as_1d,
    check_lengths,
    encode_labels,
    intersect,
    sensitive_frame,
)
from ethos.metric_names import GROUP_METRIC_COLUMNS
from ethos.stats.bootstrap import (
    confusion_by_group,
    percentile_interval,
    resample_confusion,
    rng_for,
)

if TYPE_CHECKING:
    from ethos.audit.protocol import AuditContext

FOUR_FIFTHS_THRESHOLD = 0.8
FOUR_FIFTHS_CAVEAT = (
    "The four-fifths rule (US EEOC Uniform Guidelines on Employee Selection Procedures, "
    "29 CFR 1607.4(D)) is a screening heuristic, not a legal test: a ratio below 0.8 flags a "
    "disparity worth investigating, a ratio above it does not establish fairness, and neither "
    "result accounts for sample size, base rates or the legal context of a decision."
)
DEFAULT_MIN_GROUP_SIZE = 30


# --------------------------------------------------------------------------------------------
# Rates from confusion counts (arrays of shape (..., n_groups)).


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


@dataclass(frozen=True)
class GroupRates:
    """Per-group counts and rates for one positive class, each of shape ``(..., n_groups)``.

    The same definitions as :func:`group_metrics` (tested equal), from confusion counts.
    """

    count: np.ndarray
    base_rate: np.ndarray
    selection_rate: np.ndarray
    accuracy: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    fnr: np.ndarray
    ppv: np.ndarray
    npv: np.ndarray

    @classmethod
    def from_confusion(cls, confusion: np.ndarray, positive: int) -> GroupRates:
        """Rates for class code ``positive`` one-vs-rest, from confusion of shape (..., G, K, K)."""
        tp = confusion[..., positive, positive]
        actual = confusion[..., positive, :].sum(axis=-1)
        predicted = confusion[..., :, positive].sum(axis=-1)
        total = confusion.sum(axis=(-2, -1))
        fp = predicted - tp
        fn = actual - tp
        tn = total - tp - fp - fn
        return cls(
            count=total,
            base_rate=_rate(actual, total),
            selection_rate=_rate(predicted, total),
            accuracy=_rate(tp + tn, total),
            tpr=_rate(tp, actual),
            fpr=_rate(fp, fp + tn),
            fnr=_rate(fn, actual),
            ppv=_rate(tp, predicted),
            npv=_rate(tn, tn + fn),
        )


def _defined_extremes(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    defined = np.isfinite(rates)
    low = np.where(defined, rates, np.inf).min(axis=-1, initial=np.inf)
    high = np.where(defined, rates, -np.inf).max(axis=-1, initial=-np.inf)
    return low, high, defined.sum(axis=-1) >= 2


def _spread(rates: np.ndarray) -> np.ndarray:
    """max_a r(a) - min_a r(a) over groups where r is defined; NaN with fewer than two."""
    low, high, ok = _defined_extremes(rates)
    return np.where(ok, high - low, np.nan)


def _ratio(rates: np.ndarray) -> np.ndarray:
    """min_a r(a) / max_a r(a) over groups where r is defined; NaN with fewer than two or 0/0."""
    low, high, ok = _defined_extremes(rates)
    return _rate(np.where(ok, low, np.nan), np.where(ok, high, 0.0))


def demographic_parity_difference(r: GroupRates) -> np.ndarray:
    """max_a P(Y^=1 | A=a) - min_a P(Y^=1 | A=a).

    Source: Fairlearn user guide, "Common fairness metrics" (demographic parity, Agarwal et al.
    2018, "A Reductions Approach to Fair Classification").
    """
    return _spread(r.selection_rate)


def demographic_parity_ratio(r: GroupRates) -> np.ndarray:
    """min_a P(Y^=1 | A=a) / max_a P(Y^=1 | A=a). Source: Fairlearn user guide."""
    return _ratio(r.selection_rate)


def equalized_odds_difference(r: GroupRates) -> np.ndarray:
    """max(TPR gap, FPR gap), each gap max_a - min_a (worst case).

    Source: Hardt, Price & Srebro 2016, "Equality of Opportunity in Supervised Learning";
    Fairlearn's ``equalized_odds_difference(agg="worst_case")``.
    """
    return np.fmax(_spread(r.tpr), _spread(r.fpr))


def equalized_odds_ratio(r: GroupRates) -> np.ndarray:
    """min(TPR ratio, FPR ratio), each min_a / max_a (worst case; an undefined one is skipped).

    Source: Hardt, Price & Srebro 2016; Fairlearn's ``equalized_odds_ratio``.
    """
    return np.fmin(_ratio(r.tpr), _ratio(r.fpr))


def equal_opportunity_difference(r: GroupRates) -> np.ndarray:
    """max_a TPR(a) - min_a TPR(a). Source: Hardt, Price & Srebro 2016 (equal opportunity)."""
    return _spread(r.tpr)


def disparate_impact_ratio(r: GroupRates) -> np.ndarray:
    """Lowest selection rate divided by the highest: min_a P(Y^=1|A=a) / max_a P(Y^=1|A=a).

    Source: US EEOC Uniform Guidelines, 29 CFR 1607.4(D) ("a selection rate for any race, sex, or
    ethnic group which is less than four-fifths (4/5) of the rate for the group with the highest
    rate"); Feldman et al. 2015. By that definition it equals the demographic parity ratio; both
    keys are reported because readers look for either.
    """
    return _ratio(r.selection_rate)


def predictive_parity_difference(r: GroupRates) -> np.ndarray:
    """max_a PPV(a) - min_a PPV(a), PPV = P(Y=1 | Y^=1, A=a).

    Source: Chouldechova 2017, "Fair prediction with disparate impact" (predictive parity).
    """
    return _spread(r.ppv)


DISPARITIES: dict[str, Callable[[GroupRates], np.ndarray]] = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
    "equal_opportunity_difference": equal_opportunity_difference,
    "disparate_impact_ratio": disparate_impact_ratio,
    "predictive_parity_difference": predictive_parity_difference,
}
"""Disparity name -> formula over :class:`GroupRates`; the worst case of a ``*_ratio`` is its
minimum, of every other its maximum."""


def _worst(name: str, values: np.ndarray, axis: int) -> np.ndarray:
    reduce = np.fmin if name.endswith("_ratio") else np.fmax
    return reduce.reduce(values, axis=axis)


# --------------------------------------------------------------------------------------------
# Per-group metrics with MetricFrame.


def _base_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true))


def _tpr(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(recall_score(y_true, y_pred, pos_label=1, zero_division=np.nan))


def _fpr(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return 1.0 - float(recall_score(y_true, y_pred, pos_label=0, zero_division=np.nan))


def _fnr(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return 1.0 - _tpr(y_true, y_pred)


def _ppv(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(precision_score(y_true, y_pred, pos_label=1, zero_division=np.nan))


def _npv(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(precision_score(y_true, y_pred, pos_label=0, zero_division=np.nan))


def _auroc(y_true: np.ndarray, y_pred: np.ndarray | None, y_score: np.ndarray) -> float:
    if len(np.unique(y_true)) < 2:
        return float("nan")  # AUROC is undefined for a group with one class
    return float(roc_auc_score(y_true, y_score))


_METRICS: dict[str, Callable[..., float]] = {
    "count": count,
    "base_rate": _base_rate,
    "selection_rate": selection_rate,
    "accuracy": accuracy_score,
    "tpr": _tpr,
    "fpr": _fpr,
    "fnr": _fnr,
    "ppv": _ppv,
    "npv": _npv,
}


def _binary_group_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, y_score: np.ndarray | None
) -> pd.DataFrame:
    metrics = dict(_METRICS)
    sample_params: dict[str, dict[str, Any]] = {}
    if y_score is not None:
        metrics["auroc"] = _auroc
        sample_params["auroc"] = {"y_score": y_score}
    sensitive: pd.DataFrame | pd.Series = groups.iloc[:, 0] if groups.shape[1] == 1 else groups
    with warnings.catch_warnings():
        # NaN is the documented answer for an undefined rate; sklearn warns about it.
        warnings.simplefilter("ignore", RuntimeWarning)
        frame = MetricFrame(
            metrics=metrics,
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=sensitive,
            sample_params=sample_params,
        ).by_group
    table = frame.astype(float)
    table["count"] = table["count"].astype(int)
    return table


def group_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    y_score: Any = None,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
) -> pd.DataFrame:
    """Per-group classification metrics, one row per group, via fairlearn's ``MetricFrame``.

    Columns: ``count``, ``base_rate`` P(Y=1), ``selection_rate`` P(Y^=1), ``accuracy``,
    ``tpr`` TP/(TP+FN), ``fpr`` FP/(FP+TN), ``fnr`` FN/(TP+FN), ``ppv`` TP/(TP+FP),
    ``npv`` TN/(TN+FN), and ``auroc`` when ``y_score`` is given. A rate whose denominator is zero
    in a group (e.g. TPR of a group without positives, AUROC of a group with one class) is NaN.

    Several sensitive columns give one row per combination (MultiIndex). Multiclass labels are
    audited one-vs-rest: the index gains an outer level ``class`` and ``y_score`` must have one
    column per class. Definitions: Fawcett 2006, "An introduction to ROC analysis".
    """
    true = as_1d("y_true", y_true)
    pred = as_1d("y_pred", y_pred)
    n = check_lengths(y_true=true, y_pred=pred)
    groups = sensitive_frame(sensitive_features, n_rows=n)
    encoded = encode_labels(true, pred, labels=labels, pos_label=pos_label)
    assert encoded.y_pred is not None
    score = None if y_score is None else np.asarray(y_score, dtype=float)
    if score is not None:
        check_lengths(y_true=true, y_score=score)
    if encoded.binary:
        if score is not None and score.ndim == 2:
            score = score[:, -1]
        return _binary_group_metrics(encoded.y_true, encoded.y_pred, groups, score)
    if score is not None and (score.ndim != 2 or score.shape[1] != len(encoded.classes)):
        raise AuditError(
            f"multiclass y_score must have one column per class ({len(encoded.classes)}), "
            f"got shape {score.shape}"
        )
    tables = {
        cls: _binary_group_metrics(
            (encoded.y_true == k).astype(int),
            (encoded.y_pred == k).astype(int),
            groups,
            None if score is None else score[:, k],
        )
        for k, cls in enumerate(encoded.classes)
    }
    return pd.concat(tables, names=["class"])


# --------------------------------------------------------------------------------------------
# Disparities with bootstrap intervals.

Interval = dict[str, float]


def _group_confusion(encoded: Labels, group_values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Sorted group names and their confusion matrices, shape (n_groups, K, K)."""
    assert encoded.y_pred is not None
    names, codes = np.unique(group_values.astype(str), return_inverse=True)
    confusion = confusion_by_group(
        encoded.y_true,
        encoded.y_pred,
        codes.reshape(-1),
        n_groups=len(names),
        n_classes=len(encoded.classes),
    )
    return [str(n) for n in names], confusion


def _attribute_disparities(
    encoded: Labels,
    confusion: np.ndarray,
    *,
    n_bootstrap: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[dict[str, Interval], dict[Any, dict[str, Interval]]]:
    """Disparities between the groups of ``confusion`` (G, K, K): worst case over classes, and
    one set per class (one-vs-rest; the positive class only for a binary task)."""
    k = len(encoded.classes)
    boot = resample_confusion(confusion, n_resamples=n_bootstrap, rng=rng) if n_bootstrap else None
    positives = [1] if encoded.binary else list(range(k))

    # point[name]: one value per audited class; samples[name]: one (B,) array per audited class
    point: dict[str, list[np.ndarray]] = {name: [] for name in DISPARITIES}
    samples: dict[str, list[np.ndarray]] = {name: [] for name in DISPARITIES}
    with np.errstate(invalid="ignore", divide="ignore"):
        for positive in positives:
            rates = GroupRates.from_confusion(confusion, positive)
            boot_rates = None if boot is None else GroupRates.from_confusion(boot, positive)
            for name, formula in DISPARITIES.items():
                point[name].append(formula(rates))
                if boot_rates is not None:
                    samples[name].append(formula(boot_rates))

    def interval(value: float, draws: np.ndarray | None) -> Interval:
        low, high = (
            (float("nan"), float("nan"))
            if draws is None
            else percentile_interval(draws, confidence=confidence)
        )
        return {"value": value, "ci_low": low, "ci_high": high}

    per_class: dict[Any, dict[str, Interval]] = {}
    overall: dict[str, Interval] = {}
    for name in DISPARITIES:
        values = np.stack(point[name])  # (C,)
        draws = np.stack(samples[name], axis=-1) if boot is not None else None  # (B, C)
        for i, positive in enumerate(positives):
            per_class.setdefault(encoded.classes[positive], {})[name] = interval(
                float(values[i]), None if draws is None else draws[:, i]
            )
        worst_draws = None if draws is None else _worst(name, draws, axis=1)
        overall[name] = interval(float(_worst(name, values, axis=0)), worst_draws)
    return overall, per_class


def disparities(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    min_group_size: int = 1,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """All :data:`DISPARITIES` for one attribute, each as ``{"value", "ci_low", "ci_high"}``.

    Several sensitive columns are intersected into one attribute. Groups with fewer than
    ``min_group_size`` rows are left out. Intervals are percentile intervals of a bootstrap that
    resamples rows within each group (``n_bootstrap`` resamples, seeded by ``seed``; 0 turns it off
    and gives NaN bounds). Multiclass labels give the worst case over classes one-vs-rest.
    """
    true = as_1d("y_true", y_true)
    pred = as_1d("y_pred", y_pred)
    n = check_lengths(y_true=true, y_pred=pred)
    frame = sensitive_frame(sensitive_features, n_rows=n)
    name, values = intersect(frame, list(frame.columns))
    encoded = encode_labels(true, pred, labels=labels, pos_label=pos_label)
    _, confusion = _group_confusion(encoded, values)
    used = confusion.sum(axis=(1, 2)) >= min_group_size
    overall, _ = _attribute_disparities(
        encoded,
        confusion[used],
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        rng=rng_for(seed, name),
    )
    return overall


# --------------------------------------------------------------------------------------------
# The JSON-able fairness section.


def _group_rows(
    names: list[str],
    confusion: np.ndarray,
    positive: int,
    used: np.ndarray,
    *,
    y_true: np.ndarray,
    group_values: np.ndarray,
    score: np.ndarray | None,
) -> dict[str, dict[str, Any]]:
    """The ``groups`` entries of a section: :class:`GroupRates` per group (the same numbers as
    :func:`group_metrics`, without its per-call ``MetricFrame`` cost), AUROC by scikit-learn."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = GroupRates.from_confusion(confusion, positive)
    rows: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        entry: dict[str, Any] = {"count": int(rates.count[i])}
        entry.update({c: float(getattr(rates, c)[i]) for c in GROUP_METRIC_COLUMNS[1:]})
        if score is not None:
            member = group_values == name
            entry["auroc"] = _auroc((y_true[member] == positive).astype(int), None, score[member])
        entry["used_for_disparities"] = bool(used[i])
        rows[name] = entry
    return rows


def _four_fifths(ratio: float) -> dict[str, Any]:
    evaluable = bool(np.isfinite(ratio))
    return {
        "passes": bool(evaluable and ratio >= FOUR_FIFTHS_THRESHOLD),
        "evaluable": evaluable,
        "threshold": FOUR_FIFTHS_THRESHOLD,
        "ratio": ratio,
        "caveat": FOUR_FIFTHS_CAVEAT
        + (
            ""
            if evaluable
            else " Not evaluable here (fewer than two groups large enough, or no group is ever"
            " selected), so it is reported as not passing."
        ),
    }


def _attribute_section(
    encoded: Labels,
    values: np.ndarray,
    attribute: str,
    *,
    score: np.ndarray | None,
    min_group_size: int,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    values = values.astype(str)
    names, confusion = _group_confusion(encoded, values)
    counts = confusion.sum(axis=(1, 2))
    used = counts >= min_group_size
    overall, per_class = _attribute_disparities(
        encoded,
        confusion[used],
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        rng=rng_for(seed, attribute),
    )

    def rows(positive: int, class_score: np.ndarray | None) -> dict[str, dict[str, Any]]:
        return _group_rows(
            names,
            confusion,
            positive,
            used,
            y_true=encoded.y_true,
            group_values=values,
            score=class_score,
        )

    section: dict[str, Any] = {"min_group_size": min_group_size}
    if encoded.binary:
        section["groups"] = rows(1, score)
    else:
        section["classes"] = {
            str(cls): {
                "groups": rows(k, None if score is None else score[:, k]),
                "disparities": per_class[cls],
                "four_fifths_rule": _four_fifths(per_class[cls]["disparate_impact_ratio"]["value"]),
            }
            for k, cls in enumerate(encoded.classes)
        }
        correct = np.trace(confusion, axis1=1, axis2=2)
        section["groups"] = {
            name: {
                "count": int(counts[i]),
                "accuracy": float(correct[i] / counts[i]),
                # class-specific rates live under "classes"; kept as null for a uniform shape
                **{c: None for c in GROUP_METRIC_COLUMNS if c not in ("count", "accuracy")},
                "used_for_disparities": bool(used[i]),
            }
            for i, name in enumerate(names)
        }
    section["disparities"] = overall
    section["four_fifths_rule"] = _four_fifths(overall["disparate_impact_ratio"]["value"])
    return section


def fairness_section(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    y_score: Any = None,
    intersections: Literal["pairs"] | Sequence[Sequence[str]] | None = "pairs",
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
) -> dict[str, Any]:
    """The fairness section of an audit: one entry per attribute and per intersection.

    Shape (other tools read it)::

        {"<attribute>": {
            "groups": {"<value>": {"count", "base_rate", "selection_rate", "accuracy", "tpr",
                                   "fpr", "fnr", "ppv", "npv", ["auroc"], "used_for_disparities"}},
            "disparities": {"<name>": {"value", "ci_low", "ci_high"}, ...},  # see DISPARITIES
            "four_fifths_rule": {"passes", "caveat", "evaluable", "threshold", "ratio"},
            "min_group_size": int}}

    Intersections are keyed ``"a*b"`` with group values ``"x*y"``; ``intersections="pairs"`` adds
    every pair of attributes, or pass explicit tuples of attribute names. Groups smaller than
    ``min_group_size`` are reported with ``used_for_disparities: false`` and left out of the
    disparities. For multiclass labels each attribute also has ``"classes": {"<class>": {"groups",
    "disparities", "four_fifths_rule"}}`` (one-vs-rest) and its top-level disparities are the worst
    case over classes; the class-specific group rates at the top level are null. Values may be NaN;
    pass the result through :func:`ethos.audit.protocol.to_jsonable` before ``json.dumps``.
    """
    true = as_1d("y_true", y_true)
    pred = as_1d("y_pred", y_pred)
    n = check_lengths(y_true=true, y_pred=pred)
    frame = sensitive_frame(sensitive_features, n_rows=n)
    if min_group_size < 1:
        raise AuditError(f"min_group_size must be at least 1, got {min_group_size}")
    encoded = encode_labels(true, pred, labels=labels, pos_label=pos_label)
    score = None
    if y_score is not None:
        score = np.asarray(y_score, dtype=float)
        check_lengths(y_true=true, y_score=score)
        if encoded.binary and score.ndim == 2:
            score = score[:, -1]
        if not encoded.binary and (score.ndim != 2 or score.shape[1] != len(encoded.classes)):
            raise AuditError(
                f"multiclass y_score must have one column per class ({len(encoded.classes)}), "
                f"got shape {score.shape}"
            )

    attributes: list[tuple[str, np.ndarray]] = [
        (str(c), frame[c].to_numpy(dtype=object)) for c in frame.columns
    ]
    if intersections == "pairs":
        combos: list[Sequence[str]] = [list(p) for p in combinations(frame.columns, 2)]
    else:
        combos = [list(c) for c in (intersections or [])]
    attributes += [intersect(frame, combo) for combo in combos]

    return {
        name: _attribute_section(
            encoded,
            values,
            name,
            score=score,
            min_group_size=min_group_size,
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            seed=seed,
        )
        for name, values in attributes
    }


class FairnessCheck:
    """The fairness audit check: :func:`fairness_section` on an :class:`AuditContext`.

    Parameters are stored as given (scikit-learn style) and used in :meth:`run`.
    """

    name: str = "fairness"
    requires: tuple[str, ...] = ("y_true", "y_pred", "groups")

    def __init__(
        self,
        *,
        intersections: Literal["pairs"] | Sequence[Sequence[str]] | None = "pairs",
        min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
    ) -> None:
        self.intersections = intersections
        self.min_group_size = min_group_size
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence

    def run(self, context: AuditContext) -> dict[str, Any]:
        context.require(self)
        return fairness_section(
            context.y_true,
            context.y_pred,
            sensitive_features=context.groups,
            y_score=context.y_prob,
            intersections=self.intersections,
            min_group_size=self.min_group_size,
            n_bootstrap=self.n_bootstrap,
            confidence=self.confidence,
            seed=context.seed,
            labels=context.labels,
            pos_label=context.pos_label,
        )
