"""Is a model better than a constant? The informativeness rule, on encoded labels.

The audit's check (:mod:`ethos.audit.informativeness`) and training's metrics.json flag both
use :func:`judge`, so the two always agree; it lives here, below both, because it is statistics
of arrays and needs neither.

Why. A model that predicts the majority class for every row looks harmless to the other screens:
its calibration error is small (it states the base rate, which is right on average), no
perturbation flips it (it never changes its mind), and its fairness gaps are 0 or undefined
(every group is treated alike, i.e. not at all). Those numbers are true but say nothing about the
model, so they must not read as green, and a policy must not pass it.

The rule. A model is **not informative** when any of these holds on the audited rows:

1. *constant prediction*: every row gets the same predicted class;
2. *accuracy not above the majority baseline*: accuracy <= the larger of (a) the share of the
   most frequent true class among the audited rows (the best constant prediction on these rows)
   and (b) the recorded test accuracy of the majority-class baseline in metrics.json (the
   training set's most frequent class), when the run recorded one;
3. *AUROC not above chance*: the lower end of AUROC's 95 % percentile-bootstrap interval is
   <= 0.5, i.e. the interval includes 0.5 (or lies below it). AUROC is that of the
   probabilities (binary: P(positive); multiclass: the macro one-vs-rest mean), or, when only
   decisions are given, of the decisions themselves (for a binary task that is the balanced
   accuracy, (TPR + TNR) / 2). Where AUROC is undefined (one true class among the rows) this
   criterion is not evaluated and the section says so; with ``n_bootstrap=0`` the point value is
   compared with 0.5 instead of the interval.

The TF-IDF + logistic-regression baseline that training records is reported beside the model
for reference, but does not decide: a fine-tuned model can trail a bag-of-words model and still
rank people far better than chance.

The bootstrap resamples rows with replacement *within each true class* (stratified, so every
resample keeps the class counts and AUROC stays defined; Efron & Tibshirani 1993, ch. 6 and 13;
the stratified default of pROC, Robin et al. 2011). AUROC of a resample is the weighted
Mann-Whitney statistic (Hanley & McNeil 1982; Fawcett 2006): with w the number of times each row
was drawn, AUROC = Σ_{i pos} Σ_{j neg} w_i w_j ([s_i > s_j] + ½[s_i = s_j]) / (W_pos W_neg),
computed from cumulative sums over the rows sorted by score, O(n) per resample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ethos.stats.bootstrap import percentile_interval, rng_for

CHANCE_AUROC = 0.5
ACCURACY_TOLERANCE = 1e-12
"""Accuracies equal to within float rounding count as equal (not above the baseline)."""
CHUNK_CELLS = 2_000_000
"""Resamples are drawn and scored in chunks of about this many (resample, row) cells (16 MB)."""
RULE = (
    "not informative when every row gets one predicted class, or accuracy is not above the "
    "majority baseline (the larger of the audited rows' majority share and metrics.json's "
    "majority-class baseline), or the lower end of AUROC's 95% bootstrap interval is <= 0.5"
)


def weighted_auroc(score: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of ``score`` for the rows where ``positive`` is true, under each row of ``weights``.

    ``weights`` has shape (R, n): how often each row counts in each of R resamples (all ones gives
    the ordinary AUROC, equal to scikit-learn's ``roc_auc_score``). Ties count one half. Returns
    shape (R,); NaN where a resample has no positive or no negative weight.
    """
    order = np.argsort(score, kind="mergesort")
    ordered = score[order]
    is_pos = positive[order].astype(bool)
    w = np.asarray(weights, dtype=float)[:, order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]  # first row of each block of ties
    neg_w = np.where(is_pos, 0.0, w)
    pos_w = np.where(is_pos, w, 0.0)
    neg_block = np.add.reduceat(neg_w, starts, axis=1)
    pos_block = np.add.reduceat(pos_w, starts, axis=1)
    below = np.cumsum(neg_block, axis=1) - neg_block  # negative weight strictly below each block
    numerator = (pos_block * (below + 0.5 * neg_block)).sum(axis=1)
    denominator = pos_w.sum(axis=1) * neg_w.sum(axis=1)
    out = np.full(len(w), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def macro_auroc(y_codes: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Binary AUROC (``scores`` of shape (n,), positive code 1) or the macro one-vs-rest mean
    over classes present (``scores`` of shape (n, K)), once per row of ``weights``."""
    if scores.ndim == 1:
        return weighted_auroc(scores, y_codes == 1, weights)
    per_class = [
        weighted_auroc(scores[:, k], y_codes == k, weights)
        for k in range(scores.shape[1])
        if (y_codes == k).any()
    ]
    return np.mean(np.stack(per_class), axis=0)


def stratified_weights(
    y_codes: np.ndarray, *, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Row counts of ``n_resamples`` bootstrap resamples drawn within each true class, (R, n).

    Drawing n_c rows with replacement from a class's n_c rows is, in distribution, one multinomial
    draw of n_c over those rows with equal probabilities (see :mod:`ethos.stats.bootstrap`).
    """
    weights = np.zeros((n_resamples, len(y_codes)))
    for code in np.unique(y_codes):
        rows = np.flatnonzero(y_codes == code)
        even = np.full(len(rows), 1.0 / len(rows))
        weights[:, rows] = rng.multinomial(len(rows), even, size=n_resamples)
    return weights


def _scores(y_prob: Any, y_pred: np.ndarray, n_classes: int) -> tuple[np.ndarray, str]:
    """The ranking AUROC is taken of: probabilities when given, else the decisions (one-hot)."""
    if y_prob is not None:
        prob = np.asarray(y_prob, dtype=float)
        if prob.ndim == 2 and prob.shape[1] == 2:
            prob = prob[:, 1]
        binary = n_classes == 2 and prob.ndim == 1
        if binary or (prob.ndim == 2 and prob.shape[1] == n_classes):
            return prob, "probabilities"
    if n_classes == 2:
        return (y_pred == 1).astype(float), "decisions"
    return np.eye(n_classes)[y_pred], "decisions"


def _auroc_section(
    y_codes: np.ndarray, scores: np.ndarray, *, n_bootstrap: int, confidence: float, seed: int
) -> dict[str, Any]:
    """AUROC with its bootstrap interval and whether the interval lies above chance."""
    if len(np.unique(y_codes)) < 2:
        return {"value": None, "ci_low": None, "ci_high": None, "above_chance": None}
    value = float(macro_auroc(y_codes, scores, np.ones((1, len(y_codes))))[0])
    rng = rng_for(seed, "informativeness")
    chunk = max(1, CHUNK_CELLS // len(y_codes))  # bounds memory on large files
    draws = np.concatenate(
        [
            macro_auroc(
                y_codes,
                scores,
                stratified_weights(y_codes, n_resamples=min(chunk, n_bootstrap - start), rng=rng),
            )
            for start in range(0, n_bootstrap, chunk)
        ]
        or [np.empty(0)]
    )
    low, high = percentile_interval(draws, confidence=confidence)
    # without resamples (n_bootstrap=0) only the point value can be compared with chance
    bound = value if np.isnan(low) else low
    return {
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "above_chance": bool(bound > CHANCE_AUROC),
    }


def _recorded(baselines: Mapping[str, Any] | None, name: str, key: str) -> float | None:
    """``baselines[name][key]`` from metrics.json's test part, when it is a number."""
    value = ((baselines or {}).get(name) or {}).get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _reasons(section: dict[str, Any]) -> list[str]:
    """One sentence per criterion that makes the model not informative."""
    reasons = []
    if section["constant_prediction"]:
        only = next(iter(section["predicted_classes"]))
        reasons.append(f"constant prediction: every row is predicted '{only}'")
    if not section["beats_majority"]:
        reasons.append(
            f"accuracy {section['accuracy']:.3f} is not above the majority baseline "
            f"{section['majority_accuracy']:.3f}"
        )
    auroc = section["auroc"]
    if auroc["above_chance"] is False:
        reasons.append(
            f"AUROC {auroc['value']:.3f} (95% CI {auroc['ci_low']:.3f}-{auroc['ci_high']:.3f}) "
            "is not above chance (0.5)"
        )
    return reasons


def judge(
    codes: np.ndarray,
    predicted: np.ndarray,
    *,
    n_classes: int,
    names: Sequence[str],
    y_prob: Any = None,
    baselines: Mapping[str, Any] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The informativeness verdict for encoded labels (see the module docstring for the rule).

    ``codes`` and ``predicted`` are class codes 0..n_classes-1 (true and decided), ``names`` the
    class names in code order, ``y_prob`` the probabilities (binary: P(code 1) or (n, 2); else
    (n, K)) or None to rank by the decisions, ``baselines`` metrics.json's baselines for these rows
    (``{"majority": {"accuracy": ...}, "tfidf_logreg": {...}}``). Shape::

        {"informative", "reasons", "rule", "rows", "predicted_classes", "constant_prediction",
         "accuracy", "majority_accuracy", "majority": {"audited_rows", "recorded"},
         "beats_majority", "auroc": {"value", "ci_low", "ci_high", "above_chance", "scores"},
         "tfidf_logreg": {"accuracy", "auroc"} (when recorded), "n_bootstrap", "confidence"}
    """
    k = n_classes
    accuracy = float(np.mean(codes == predicted))
    own_majority = float(np.bincount(codes, minlength=k).max() / len(codes))
    recorded = _recorded(baselines, "majority", "accuracy")
    majority = max(own_majority, recorded) if recorded is not None else own_majority
    scores, kind = _scores(y_prob, predicted, k)
    auroc = _auroc_section(codes, scores, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
    auroc["scores"] = kind
    counts = np.bincount(predicted, minlength=k)
    section: dict[str, Any] = {
        "rows": len(codes),
        "predicted_classes": {names[int(c)]: int(counts[c]) for c in np.flatnonzero(counts)},
        "constant_prediction": bool(np.count_nonzero(counts) == 1),
        "accuracy": accuracy,
        "majority_accuracy": majority,
        "majority": {"audited_rows": own_majority, "recorded": recorded},
        "beats_majority": bool(accuracy > majority + ACCURACY_TOLERANCE),
        "auroc": auroc,
    }
    tfidf = {m: _recorded(baselines, "tfidf_logreg", m) for m in ("accuracy", "auroc")}
    if any(v is not None for v in tfidf.values()):
        section["tfidf_logreg"] = tfidf
    reasons = _reasons(section)
    if auroc["above_chance"] is None:
        section["note"] = "AUROC is undefined with one true class among the rows: not evaluated"
    return {
        "informative": not reasons,
        "reasons": reasons,
        "rule": RULE,
        **section,
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
    }
