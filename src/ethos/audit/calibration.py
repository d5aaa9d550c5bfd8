"""Calibration: ECE (equal-width and equal-mass bins), Brier score, reliability data and diagrams.

Binary tasks are calibrated on P(positive): a bin's *confidence* is its mean predicted P(positive)
and its *accuracy* the fraction of positives in it (the convention of scikit-learn's
``calibration_curve``). Multiclass tasks use the top label: confidence is the largest class
probability and accuracy the fraction of rows whose arg-max class is the true one (Guo et al. 2017,
"On Calibration of Modern Neural Networks").

scikit-learn's ``calibration_curve`` gives reliability points but neither bin counts (needed as ECE
weights) nor empty bins nor equal-mass bins without tied edges, so binning is written by hand here;
it uses the same bin edges and edge convention as ``calibration_curve`` (the tests check both
agree). The Brier score is scikit-learn's ``brier_score_loss``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import brier_score_loss

from ethos.audit.errors import AuditError, AuditWarning
from ethos.audit.validation import (
    as_1d,
    check_probabilities,
    encode_labels,
    sensitive_frame,
)

if TYPE_CHECKING:
    from ethos.audit.protocol import AuditContext

Strategy = Literal["uniform", "equal_mass"]
BINNINGS: dict[str, tuple[Strategy, int]] = {
    "uniform_15": ("uniform", 15),
    "equal_mass_10": ("equal_mass", 10),
}
"""The binnings every calibration summary reports: key -> (strategy, number of bins)."""
MIN_EXAMPLES = 300
"""Below this many examples an ECE estimate is too noisy to compare; the summary says so."""


@dataclass(frozen=True)
class _Prepared:
    confidence: np.ndarray  # what each row's bin is chosen by
    outcome: np.ndarray  # 1.0 where the event the confidence predicts happened
    y_codes: np.ndarray  # label codes (positive = 1 for binary)
    prob: np.ndarray  # P(positive) (n,) or (n, K)
    multiclass: bool


def _prepare(
    y_true: Any, y_prob: Any, *, labels: Sequence[Any] | None, pos_label: Any
) -> _Prepared:
    true = as_1d("y_true", y_true)
    prob = check_probabilities(y_prob, n_rows=len(true))
    if len(true) == 0:
        raise AuditError("empty input: there are no examples to audit")
    n_classes = prob.shape[1] if prob.ndim == 2 else None
    encoded = encode_labels(true, labels=labels, pos_label=pos_label, n_classes=n_classes)
    if prob.ndim == 1:
        if not encoded.binary:
            raise AuditError(
                f"1-D probabilities are for binary tasks, but the labels are {encoded.classes}",
                hint="pass one probability column per class",
            )
        return _Prepared(prob, encoded.y_true.astype(float), encoded.y_true, prob, False)
    predicted = prob.argmax(axis=1)
    return _Prepared(
        prob.max(axis=1), (predicted == encoded.y_true).astype(float), encoded.y_true, prob, True
    )


def _bin_ids(confidence: np.ndarray, n_bins: int, strategy: Strategy) -> np.ndarray:
    if n_bins < 1:
        raise AuditError(f"n_bins must be at least 1, got {n_bins}")
    if strategy == "uniform":
        # edges 0, 1/n, ..., 1; a value on an inner edge goes to the lower bin, like sklearn
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        return np.searchsorted(edges[1:-1], confidence)
    if strategy == "equal_mass":
        # sort and split into n_bins runs of (almost) equal size, ties broken by position, so
        # every bin has floor(N/n) or ceil(N/n) rows even with tied confidences (Nixon et al. 2019)
        ids = np.empty(len(confidence), dtype=np.int64)
        order = np.argsort(confidence, kind="stable")
        for b, chunk in enumerate(np.array_split(order, n_bins)):
            ids[chunk] = b
        return ids
    raise AuditError(f"unknown binning strategy {strategy!r}; use 'uniform' or 'equal_mass'")


def _table(prepared: _Prepared, n_bins: int, strategy: Strategy) -> pd.DataFrame:
    ids = _bin_ids(prepared.confidence, n_bins, strategy)
    counts = np.bincount(ids, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(ids, weights=prepared.confidence, minlength=n_bins) / counts
        accuracy = np.bincount(ids, weights=prepared.outcome, minlength=n_bins) / counts
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        low, high = edges[:-1], edges[1:]
    else:
        low = np.full(n_bins, np.inf)
        high = np.full(n_bins, -np.inf)
        np.minimum.at(low, ids, prepared.confidence)
        np.maximum.at(high, ids, prepared.confidence)
        low[counts == 0] = np.nan
        high[counts == 0] = np.nan
    table = pd.DataFrame(
        {
            "bin_low": low,
            "bin_high": high,
            "mean_confidence": mean_conf,
            "accuracy": accuracy,
            "count": counts,
        }
    )
    if strategy == "equal_mass":
        table = table[table["count"] > 0].reset_index(drop=True)
    return table


def _ece(table: pd.DataFrame) -> float:
    filled = table[table["count"] > 0]
    gaps = (filled["accuracy"] - filled["mean_confidence"]).abs()
    return float((filled["count"] * gaps).sum() / filled["count"].sum())


def _brier(prepared: _Prepared) -> float:
    if prepared.multiclass:
        k = prepared.prob.shape[1]
        return float(brier_score_loss(prepared.y_codes, prepared.prob, labels=list(range(k))))
    return float(brier_score_loss(prepared.y_codes, prepared.prob, pos_label=1))


def reliability_table(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
) -> pd.DataFrame:
    """Reliability-diagram data, one row per bin: ``bin_low, bin_high, mean_confidence, accuracy,
    count``.

    ``"uniform"`` gives ``n_bins`` equal-width bins on [0, 1] (empty bins kept, with NaN means);
    ``"equal_mass"`` sorts by confidence and splits into ``n_bins`` bins of equal size, with
    ``bin_low``/``bin_high`` the smallest and largest confidence inside. Source: DeGroot & Fienberg
    1983 (reliability diagrams); Guo et al. 2017.
    """
    return _table(_prepare(y_true, y_prob, labels=labels, pos_label=pos_label), n_bins, strategy)


def expected_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
) -> float:
    """ECE = sum_b (n_b / N) * |acc(b) - conf(b)| over non-empty bins b.

    Source: Naeini, Cooper & Hauskrecht 2015, "Obtaining Well Calibrated Probabilities Using
    Bayesian Binning"; Guo et al. 2017 (top-label ECE, 15 equal-width bins); Nixon et al. 2019,
    "Measuring Calibration in Deep Learning" (equal-mass bins). Binary: calibration of P(positive);
    multiclass: top-label.
    """
    return _ece(
        reliability_table(
            y_true, y_prob, n_bins=n_bins, strategy=strategy, labels=labels, pos_label=pos_label
        )
    )


def brier_score(
    y_true: Any, y_prob: Any, *, labels: Sequence[Any] | None = None, pos_label: Any = None
) -> float:
    """Brier score via scikit-learn's ``brier_score_loss``.

    Binary: (1/N) sum_i (p_i - y_i)^2 with p_i = P(positive). Multiclass: (1/N) sum_i sum_k
    (p_ik - [y_i = k])^2, Brier's original definition (Brier 1950, "Verification of forecasts
    expressed in terms of probability"), which ranges over [0, 2].
    """
    return _brier(_prepare(y_true, y_prob, labels=labels, pos_label=pos_label))


def _summary(prepared: _Prepared, where: str, min_examples: int) -> dict[str, Any]:
    n = len(prepared.confidence)
    tables = {key: _table(prepared, bins, strategy) for key, (strategy, bins) in BINNINGS.items()}
    warning = (
        f"{where}: only {n} examples (fewer than {min_examples}); calibration estimates are noisy"
        if n < min_examples
        else None
    )
    return {
        "count": n,
        "ece": {key: _ece(table) for key, table in tables.items()},
        "brier": _brier(prepared),
        "reliability": {key: table.to_dict(orient="records") for key, table in tables.items()},
        "warning": warning,
    }


def _subset(prepared: _Prepared, mask: np.ndarray) -> _Prepared:
    return _Prepared(
        prepared.confidence[mask],
        prepared.outcome[mask],
        prepared.y_codes[mask],
        prepared.prob[mask],
        prepared.multiclass,
    )


def calibration_section(
    y_true: Any,
    y_prob: Any,
    *,
    sensitive_features: Any = None,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    min_examples: int = MIN_EXAMPLES,
) -> dict[str, Any]:
    """The calibration section of an audit, overall and per group.

    Shape::

        {"kind": "binary" | "multiclass_top_label",
         "overall": SUMMARY,
         "groups": {"<attribute>": {"<value>": SUMMARY}},
         "warnings": [str, ...]}
        SUMMARY = {"count", "ece": {"uniform_15", "equal_mass_10"}, "brier",
                   "reliability": {"uniform_15": [BIN], "equal_mass_10": [BIN]}, "warning"}
        BIN = {"bin_low", "bin_high", "mean_confidence", "accuracy", "count"}

    Every summary computed on fewer than ``min_examples`` rows carries a ``warning`` (also listed in
    ``warnings`` and emitted once as :class:`AuditWarning`). Values may be NaN (an empty bin);
    pass the result through :func:`ethos.audit.protocol.to_jsonable` before ``json.dumps``.
    """
    prepared = _prepare(y_true, y_prob, labels=labels, pos_label=pos_label)
    section: dict[str, Any] = {
        "kind": "multiclass_top_label" if prepared.multiclass else "binary",
        "overall": _summary(prepared, "overall", min_examples),
        "groups": {},
    }
    if sensitive_features is not None:
        frame = sensitive_frame(sensitive_features, n_rows=len(prepared.confidence))
        for attribute in frame.columns:
            values = frame[attribute].to_numpy(dtype=object)
            section["groups"][attribute] = {
                str(g): _summary(_subset(prepared, values == g), f"{attribute}={g}", min_examples)
                for g in sorted(set(values.tolist()), key=str)
            }
    notes = [section["overall"]["warning"]] + [
        summary["warning"] for groups in section["groups"].values() for summary in groups.values()
    ]
    section["warnings"] = [w for w in notes if w]
    if section["warnings"]:
        warnings.warn(
            f"calibration computed on small samples ({len(section['warnings'])} of them): "
            + "; ".join(section["warnings"][:3])
            + ("; ..." if len(section["warnings"]) > 3 else ""),
            AuditWarning,
            stacklevel=2,
        )
    return section


def reliability_diagram(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    sensitive_features: Any = None,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    title: str | None = None,
) -> Figure:
    """A reliability diagram: accuracy against mean confidence per bin, with the diagonal.

    One panel overall, plus one panel per sensitive attribute with a line per group. Returns a
    matplotlib ``Figure`` drawn on the Agg canvas (no pyplot, no global state), ready for
    ``fig.savefig``.
    """
    prepared = _prepare(y_true, y_prob, labels=labels, pos_label=pos_label)
    frame = (
        None
        if sensitive_features is None
        else sensitive_frame(sensitive_features, n_rows=len(prepared.confidence))
    )
    panels = 1 + (0 if frame is None else frame.shape[1])
    fig = Figure(figsize=(4.2 * panels, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    xlabel = "mean P(top label)" if prepared.multiclass else "mean predicted P(positive)"
    ylabel = "accuracy" if prepared.multiclass else "fraction positive"

    def draw(ax: Any, part: _Prepared, label: str) -> None:
        table = _table(part, n_bins, strategy)
        table = table[table["count"] > 0]
        ax.plot(table["mean_confidence"], table["accuracy"], marker="o", label=label)

    for i, ax in enumerate(axes):
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if i == 0:
            ece = _ece(_table(prepared, n_bins, strategy))
            draw(ax, prepared, f"overall (ECE {ece:.3f})")
            ax.set_title(title or f"Reliability ({strategy}, {n_bins} bins)")
        else:
            assert frame is not None
            attribute = frame.columns[i - 1]
            values = frame[attribute].to_numpy(dtype=object)
            for g in sorted(set(values.tolist()), key=str):
                draw(ax, _subset(prepared, values == g), str(g))
            ax.set_title(f"by {attribute}")
        ax.legend(fontsize="small")
    return fig


class CalibrationCheck:
    """The calibration audit check: :func:`calibration_section` on an :class:`AuditContext`."""

    name: str = "calibration"
    requires: tuple[str, ...] = ("y_true", "y_prob")

    def __init__(self, *, min_examples: int = MIN_EXAMPLES) -> None:
        self.min_examples = min_examples

    def run(self, context: AuditContext) -> dict[str, Any]:
        context.require(self)
        return calibration_section(
            context.y_true,
            context.y_prob,
            sensitive_features=context.groups,
            labels=context.labels,
            pos_label=context.pos_label,
            min_examples=self.min_examples,
        )
