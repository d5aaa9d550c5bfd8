"""Abstention: a calibrated confidence threshold, and the risk-coverage curve it moves along.

**The threshold is split conformal** (Vovk et al. 2005; Angelopoulos & Bates 2021, section 1):
given the confidence scores of ``n`` calibration questions drawn like the questions to come, the
``floor((1 - coverage) (n + 1))``-th smallest score is a threshold at or above which a new such
question scores with probability at least ``coverage``, whatever the scores' distribution. So
"answer when the best passage scores at least t" answers at least that share of in-domain
questions, and what it refuses is the part of the question space the knowledge base is far from.
With too few calibration questions for the wanted coverage (``floor(...) < 1``) no threshold can
promise it, and the answer is to answer everything, said in the result, not a made-up cut.

**The risk-coverage curve** (El-Yaniv & Wiener 2010; Geifman & El-Yaniv 2017) orders questions by
confidence, and for each coverage (share answered, most confident first) gives the accuracy of the
answered ones; its area (AURC, mean risk over every coverage) summarises it, lower is better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ConformalThreshold:
    """A calibrated threshold: answer when the score is at least ``threshold``."""

    threshold: float
    coverage: float
    calibration_size: int
    rank: int
    """Which smallest calibration score is the threshold (1-based); 0: none could promise it."""

    @property
    def promised(self) -> bool:
        return self.rank >= 1

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold if math.isfinite(self.threshold) else None,
            "coverage_target": self.coverage,
            "calibration_questions": self.calibration_size,
            "rank": self.rank,
            "method": "split conformal: the floor((1 - coverage) (n + 1))-th smallest "
            "calibration score",
            "promised": self.promised,
        }


def conformal_threshold(
    scores: Sequence[float] | np.ndarray, coverage: float
) -> ConformalThreshold:
    """The threshold that keeps at least ``coverage`` of questions like ``scores``' (see above)."""
    values = np.sort(np.asarray(scores, dtype=float))
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("calibration needs at least one score")
    if not np.isfinite(values).all():
        raise ValueError("calibration scores must be finite")
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must lie strictly between 0 and 1, got {coverage}")
    rank = math.floor((1.0 - coverage) * (len(values) + 1) + 1e-9)
    threshold = float(values[rank - 1]) if rank >= 1 else -math.inf
    return ConformalThreshold(
        threshold=threshold, coverage=coverage, calibration_size=len(values), rank=rank
    )


def risk_coverage(
    confidence: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    *,
    coverages: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
) -> dict[str, Any]:
    """Accuracy of the most confident share of questions, at each of ``coverages``, and AURC.

    Ties in confidence are broken by keeping the original order (a stable sort), so the curve is
    reproducible; each point also gives the confidence of the last question answered (the
    threshold that coverage needs).
    """
    scores = np.asarray(confidence, dtype=float)
    right = np.asarray(correct, dtype=bool)
    if scores.shape != right.shape or scores.ndim != 1:
        raise ValueError("confidence and correct must be two sequences of the same length")
    n = len(scores)
    if n == 0:
        return {"questions": 0, "points": [], "aurc": None}
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(right[order])
    answered = np.arange(1, n + 1)
    accuracy = hits / answered
    points = []
    for wanted in coverages:
        if not 0.0 < wanted <= 1.0:
            raise ValueError(f"a coverage must lie in (0, 1], got {wanted}")
        count = max(1, math.ceil(wanted * n - 1e-9))
        points.append(
            {
                "coverage": round(count / n, 4),
                "answered": int(count),
                "accuracy": float(accuracy[count - 1]),
                "min_confidence": float(scores[order][count - 1]),
            }
        )
    return {
        "questions": n,
        "points": points,
        "aurc": float(np.mean(1.0 - accuracy)),
        "accuracy_all": float(accuracy[-1]),
    }
