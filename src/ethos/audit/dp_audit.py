"""The empirical privacy audit: a lower bound on the run's epsilon from its canaries.

A run trained with ``train.canaries`` holds ``m`` crafted records, each trained on with
probability 1/2 (:mod:`ethos.data.canaries`). This check gives every canary a membership score
from the trained model alone, the log-odds of the label the canary was assigned,

    score_i = log p(y_i | x_i) - log(1 - p(y_i | x_i)),

(both probabilities clipped to [1e-12, 1 - 1e-12], ``1 - p`` taken as the other classes' sum so
a float32 ``p`` of 1.0 keeps its remainder), and hands the scores and the secret inclusion
coins to :func:`ethos.stats.privacy_audit.best_one_run_bound`: the one-run lower bound of
Steinke, Nasr & Jagielski, "Privacy Auditing with One (1) Training Run" (NeurIPS 2023), at 95 %
confidence, with the run's delta for a private run and delta = 0 for a non-private one (which
claims nothing, so any bound is just a measurement of how much it leaks).

The bound is a *lower* bound: the run's true epsilon exceeds it with the stated confidence. A
private run's accountant gives an *upper* bound (``manifest.training.privacy.epsilon``); a lower
bound above it means the claim is false (a broken privacy engine or accountant), which a policy
can make a hard constraint::

    - metric: privacy.dp_audit.epsilon_lower_bound
      op: "<="
      value: manifest.training.privacy.epsilon

A bound below the claim proves nothing either way (the audit of one run with a few hundred
canaries is weak: with ``m`` perfectly separated canaries it cannot exceed about
``log(m / log(1 / beta))``).

The section is written to audit.json under ``privacy.dp_audit`` (the audit runner nests a check
named ``parent.child`` into its parent's section). A run trained without canaries gets
``{"applicable": false, "reason": ...}`` when every check runs, and an
:class:`~ethos.audit.errors.AuditError` when the check is asked for by name
(``ethos audit RUN --checks privacy.dp_audit``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ethos.audit.errors import AuditError
from ethos.audit.validation import check_probabilities
from ethos.stats.privacy_audit import best_one_run_bound

if TYPE_CHECKING:
    from ethos.audit.protocol import AuditContext
    from ethos.data.canaries import Canaries
    from ethos.rundir import RunDir

CONFIDENCE = 0.95
PROB_CLIP = 1e-12
"""Probabilities are clipped to [1e-12, 1 - 1e-12] before the log-odds (|score| <= ~55.3)."""
SCORE = (
    "log-odds of the canary's assigned label, log p(y|x) - log(1 - p(y|x)), from the trained "
    "model alone"
)
NO_CANARIES = "the run was trained without canaries (train.canaries), so there is nothing to audit"


def canary_scores(probabilities: Any, labels: Any) -> np.ndarray:
    """Each canary's membership score: the log-odds the model gives its assigned label.

    ``probabilities`` is (m, K) over the label columns (or (m,) P(class 1) for a binary task);
    ``labels`` are class indices into those columns.
    """
    y = np.asarray(labels, dtype=np.int64)
    check_probabilities(probabilities, n_rows=len(y))  # finite, in [0, 1], rows summing to 1
    prob = np.asarray(probabilities, dtype=float)
    if prob.ndim == 1:
        prob = np.column_stack([1.0 - prob, prob])
    if len(y) and (y.min() < 0 or y.max() >= prob.shape[1]):
        raise AuditError(f"canary labels must be class indices 0..{prob.shape[1] - 1}")
    assigned = np.zeros(prob.shape, dtype=bool)
    assigned[np.arange(len(y)), y] = True
    # 1 - p(y) as the sum of the other columns: a float32 p(y) of 1.0 keeps its small remainder.
    picked = np.clip(prob[assigned], PROB_CLIP, 1.0 - PROB_CLIP)
    others = np.clip(np.where(assigned, 0.0, prob).sum(axis=1), PROB_CLIP, 1.0 - PROB_CLIP)
    return np.log(picked) - np.log(others)


def audit_canaries(
    predict_proba: Callable[..., Any],
    canaries: Canaries,
    *,
    epsilon: float | None = None,
    delta: float | None = None,
    confidence: float = CONFIDENCE,
    pairs: bool = False,
    k_values: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """The ``privacy.dp_audit`` section for a model (``predict_proba``) and its canaries.

    ``epsilon`` and ``delta`` are the run's claim (None: not trained privately, audited at
    delta 0). ``pairs``: the model reads text pairs (each canary's second text is empty, as in
    training). ``k_values`` fixes the guess counts (default: the Bonferroni-corrected grid of
    :func:`~ethos.stats.privacy_audit.best_one_run_bound`). The inclusion flags are read only
    after every score is computed.
    """
    texts = list(canaries.texts)
    probabilities = predict_proba(texts, [""] * len(texts)) if pairs else predict_proba(texts)
    scores = canary_scores(probabilities, canaries.label_indices)
    private = epsilon is not None
    used_delta = float(delta or 0.0) if private else 0.0
    try:
        bound = best_one_run_bound(
            scores,
            canaries.included,
            confidence=confidence,
            delta=used_delta,
            k_values=k_values,
        )
    except ValueError as exc:
        raise AuditError(f"the privacy.dp_audit bound cannot be computed: {exc}") from None
    lower = float(bound["epsilon_lower_bound"])
    included = np.asarray(canaries.included, dtype=bool)
    section: dict[str, Any] = {
        "applicable": True,
        "method": "one-run audit (Steinke, Nasr & Jagielski 2023), best of a Bonferroni-"
        "corrected grid of guess counts"
        if k_values is None
        else "one-run audit (Steinke, Nasr & Jagielski 2023), guess counts fixed in advance",
        "epsilon_lower_bound": lower,
        "confidence": float(bound["confidence"]),
        "epsilon_claimed": None if epsilon is None else float(epsilon),
        "claim": f"ε = {epsilon:.4g} (the accountant's upper bound)"
        if private
        else "none: not trained with differential privacy",
        "delta": used_delta,
        "canaries": int(bound["canaries"]),
        "included": int(np.count_nonzero(included)),
        "guesses": int(bound["guesses"]),
        "correct": int(bound["correct"]),
        "k_positive": int(bound["k_positive"]),
        "k_negative": int(bound["k_negative"]),
        "score": SCORE,
        "mean_score_included": float(scores[included].mean()) if included.any() else None,
        "mean_score_excluded": float(scores[~included].mean()) if (~included).any() else None,
        "claim_refuted": None if epsilon is None else bool(lower > float(epsilon)),
    }
    section["notes"] = _notes(section)
    return section


def _notes(section: dict[str, Any]) -> list[str]:
    lower, level = section["epsilon_lower_bound"], section["confidence"]
    claimed = section["epsilon_claimed"]
    notes = [
        f"{section['correct']} of {section['guesses']} membership guesses right "
        f"({section['k_positive']} 'trained on', {section['k_negative']} 'not trained on') "
        f"among {section['canaries']} canaries: the run's epsilon is at least {lower:.3g} "
        f"with {level:.0%} confidence"
    ]
    if claimed is None:
        notes.append(
            "the run makes no privacy claim; the bound measures how much it reveals about a "
            "training record"
        )
    elif lower > claimed:
        notes.append(
            f"the lower bound {lower:.3g} exceeds the claimed ε = {claimed:.3g}: the privacy "
            "claim is false at this confidence (a broken privacy engine or accountant)"
        )
    else:
        notes.append(
            f"consistent with the claimed ε = {claimed:.3g}; a lower bound below the claim "
            "does not prove the claim (one run with few canaries audits weakly)"
        )
    return notes


class DpAuditCheck:
    """The one-run epsilon lower bound from the run's canaries (``privacy.dp_audit``).

    Options (stored only, scikit-learn style): ``confidence`` of the bound (default 0.95),
    ``k_values`` fixed guess counts (default: the corrected grid), ``required`` makes a context
    without canaries an error instead of a "not applicable" section (the runner sets it when
    the check is asked for by name).

    Reads ``extras["canaries"]`` (:class:`ethos.data.canaries.Canaries`), ``extras["dp_epsilon"]``
    and ``extras["dp_delta"]`` (the claim; None for a non-private run) and ``extras["text_pairs"]``
    (a pair task scores canaries with empty second texts, as they were trained).

    Section::

        {"applicable": true, "method", "epsilon_lower_bound", "confidence", "epsilon_claimed",
         "claim", "delta", "canaries", "included", "guesses", "correct", "k_positive",
         "k_negative", "score", "mean_score_included", "mean_score_excluded", "claim_refuted",
         "notes"}
        | {"applicable": false, "reason": str}
    """

    name: str = "privacy.dp_audit"
    requires: tuple[str, ...] = ("predict_proba",)

    def __init__(
        self,
        *,
        confidence: float = CONFIDENCE,
        k_values: Sequence[tuple[int, int]] | None = None,
        required: bool = False,
    ) -> None:
        self.confidence = confidence
        self.k_values = k_values
        self.required = required

    def run(self, context: AuditContext) -> dict[str, Any]:
        context.require(self)
        extras = context.extras
        canaries = extras.get("canaries")
        if canaries is None:
            if self.required:
                raise AuditError(
                    f"the {self.name} audit needs canaries, and the run was trained without "
                    "them (no train.canaries)",
                    hint="train with train.canaries (e.g. canaries: {count: 200}), or leave "
                    f"{self.name} out of --checks",
                )
            return {"applicable": False, "reason": NO_CANARIES}
        if not (isinstance(self.confidence, float) and 0.0 < self.confidence < 1.0):
            raise AuditError(f"{self.name}: confidence must be in (0, 1), got {self.confidence!r}")
        assert context.predict_proba is not None
        return audit_canaries(
            context.predict_proba,
            canaries,
            epsilon=extras.get("dp_epsilon"),
            delta=extras.get("dp_delta"),
            confidence=self.confidence,
            pairs=extras.get("text_pairs") is not None,
            k_values=self.k_values,
        )


def dp_audit_run(
    run: RunDir,
    *,
    confidence: float = CONFIDENCE,
    k_values: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """The ``privacy.dp_audit`` section of a finished run, from its model and canaries.

    What ``ethos audit`` writes, without the other checks or the data: a test (or a reviewer)
    can audit a run directly. A run trained without canaries raises :class:`AuditError`.
    """
    from ethos.models.inference import RunModel

    canaries = run.canaries()
    if canaries is None:
        raise AuditError(
            f"{run.path} has no canaries: {NO_CANARIES}",
            hint="train with train.canaries (e.g. canaries: {count: 200})",
        )
    if run.config.task != "classification":
        raise AuditError(f"{run.path} is a {run.config.task} run; canaries need classification")
    scorer = RunModel.from_dir(run)
    claim = (run.manifest.get("training") or {}).get("privacy") or {}
    return audit_canaries(
        scorer.predict_proba,
        canaries,
        epsilon=claim.get("epsilon"),
        delta=claim.get("delta"),
        confidence=confidence,
        pairs=run.config.data.text_pair_field is not None,
        k_values=k_values,
    )
