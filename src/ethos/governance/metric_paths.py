"""Metric paths: how a policy names a number in a run's documents.

``metrics.test.accuracy`` reads metrics.json, ``manifest.training.optimizer_steps`` the
manifest, and anything else the audit (``fairness.race.disparities.equalized_odds_difference.value``
is ``audit.fairness...``). A ``*`` segment matches every key at that level and the policy takes the
worst case (the largest value for an upper limit or a lower-is-better indicator, the smallest
otherwise), so ``fairness.*.disparities.equalized_odds_difference.value`` covers every attribute.

A gene-edit policy (``subject: edit``) reads the ``edit`` document that ``ethos genome review``
builds from an edit request and its off-target search: ``edit.request.germline``,
``edit.offtargets.max_coding_cfd``, ``edit.guide.specificity_cfd`` and the other names in
:data:`EDIT_LEAVES`.

``informativeness.informative`` is 1 when the audit found the model better than its baselines
and 0 when not (a constant prediction, accuracy not above the majority baseline, or AUROC's 95 %
interval including 0.5: :mod:`ethos.audit.informativeness`); every bundled model policy requires
it to be 1. An audit without the section (written before the check existed) leaves the constraint
"missing", which makes the decision REVIEW, never PASS.

``privacy.dp_audit.epsilon_lower_bound`` is the one-run lower bound on epsilon from the run's
canaries (:mod:`ethos.audit.dp_audit`); a constraint may compare it with the run's own claim,
``value: manifest.training.privacy.epsilon`` (:class:`ethos.governance.policy.Constraint`).

A multiple-choice run's audit has ``qa_bias`` (:mod:`ethos.audit.qa_bias`): ``qa_bias.accuracy``,
``qa_bias.overall.ambiguous.abs_bias`` (the BBQ bias score's absolute value, x100) and per category
``qa_bias.by_category.*.ambiguous.abs_bias`` (``*``: the most biased category); ``disambiguated``
in place of ``ambiguous`` for contexts that say who, and ``accuracy``, ``bias`` (signed) beside
``abs_bias``.

Paths are checked when the policy is loaded: the document and its first section must exist, and
the last named key must be a metric ethos knows (with a did-you-mean), so a typo is an error at
once rather than a silent "missing metric" at every gate.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from ethos.errors import ConfigError
from ethos.metric_names import DISPARITY_NAMES, GROUP_METRIC_COLUMNS

SECTIONS = {
    "audit": (
        "informativeness",
        "fairness",
        "calibration",
        "robustness",
        "explanations",
        "privacy",
        "slices",
        "qa_bias",
        "generation_bias",
        "pii_leakage",
        "memorisation",
        "grounding",
        "meta",
    ),
    "metrics": ("validation", "test", "baselines", "history"),
    "manifest": (
        "data",
        "model",
        "training",
        "privacy",
        "seed",
        "wall_seconds",
        "task",
        "versions",
        "canaries",
    ),
    "edit": ("request", "guide", "offtargets"),
}
#: The numbers of the ``edit`` document (``ethos.genome.review`` builds it; a test keeps the two
#: in step). Booleans count as 1 / 0.
EDIT_LEAVES = frozenset(
    [
        "germline",
        "somatic",
        "enhancement",
        "therapy",
        "specificity_cfd",
        "specificity_mit",
        "on_target_sites",
        "on_target_in_target_gene",
        "gc_fraction",
        "poly_t",
        "homopolymer",
        "total",
        "coding",
        "max_cfd",
        "max_mit",
        "max_coding_cfd",
        "max_coding_mit",
    ]
)
LEAVES = (
    frozenset(GROUP_METRIC_COLUMNS)
    | frozenset(DISPARITY_NAMES)
    | frozenset(
        [
            "value",
            "ci_low",
            "ci_high",
            "auroc",
            "passes",
            "ratio",
            "macro_f1",
            "loss",
            "exact_match",
            "f1",
            "precision",
            "recall",
            "support",
            "ece",
            "uniform_15",
            "equal_mass_10",
            "brier",
            "flip_rate",
            "mean_abs_delta",
            "max_abs_delta",
            "max_flip_rate",
            "max_error_gap",
            "max_counterfactual_flip_rate",
            "max_noise_flip_rate",
            "coverage",
            "n_unseen",
            "mean_delta",
            "auc",
            "tpr_at_1pct_fpr",
            "rate",
            "texts_with_pii",
            "epsilon",
            "delta",
            "max_gap",
            "mean_gap",
            "within_tolerance",
            "optimizer_steps",
            "tokens_seen",
            "examples_seen",
            "trainable_parameters",
            "parameters",
            "rows",
            "wall_seconds",
            "seed",
            "noise_multiplier",
            "status",
            # the informativeness check (ethos.audit.informativeness); booleans count as 1 / 0
            "informative",
            "constant_prediction",
            "beats_majority",
            "majority_accuracy",
            "above_chance",
            # the one-run privacy audit (ethos.audit.dp_audit), audit.json's privacy.dp_audit
            "epsilon_lower_bound",
            "epsilon_claimed",
            "claim_refuted",
            "confidence",
            "canaries",
            "included",
            "guesses",
            "correct",
            "k_positive",
            "k_negative",
            "mean_score_included",
            "mean_score_excluded",
            # a multiple-choice run's accuracy and BBQ bias (ethos.audit.qa_bias): e.g.
            # qa_bias.by_category.*.ambiguous.abs_bias (the most biased category)
            "accuracy",
            "bias",
            "abs_bias",
            "ambiguous",
            "disambiguated",
            "overall",
            "by_category",
            "n_rows",
            "n_correct",
            "n_non_unknown",
            "n_biased",
            "n_questions",
            "chance_accuracy",
            "computable",
            # a causal-LM run's generation audits (ethos.audit.causal_run): e.g.
            # generation_bias.axes.*.refusal_gap.value, pii_leakage.share,
            # pii_leakage.sensitive.strings_reproduced, memorisation.max_exposure_fraction
            "share",
            "per_token",
            "refusal_rate",
            "strings_reproduced",
            "occurrences",
            "generations_with_pii",
            "max_exposure",
            "max_exposure_fraction",
            "mean_exposure",
            "perplexity",
            # a grounded run's grounding section (ethos.audit.grounding): e.g.
            # grounding.retrieval.recall@5.value, grounding.abstention.out_of_domain.abstained
            "recall@1",
            "recall@5",
            "recall@10",
            "mrr",
            "abstained",
            "answered",
            "retrieved_minus_gold",
            "recall@1_gap",
            "aurc",
        ]
    )
)


def split_path(path: str) -> tuple[str, list[str]]:
    """The document and the keys below it."""
    parts = [p for p in path.strip().split(".") if p]
    if parts and parts[0] in SECTIONS:
        return parts[0], parts[1:]
    return "audit", parts


def check_metric_path(path: str, owner: str, where: str) -> None:
    """Refuse a path that cannot name a metric of any run, with the nearest known names."""
    document, keys = split_path(path)
    if not keys:
        raise ConfigError(f"{owner} in {where}: metric path '{path}' names no metric")
    sections = SECTIONS[document]
    leaves = EDIT_LEAVES if document == "edit" else LEAVES
    if document != "manifest" and keys[0] not in sections:
        close = difflib.get_close_matches(keys[0], sections, n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"{owner} in {where}: metric '{path}' does not exist ({document}.json has no "
            f"section '{keys[0]}')",
            hint=f"{guess}sections: {', '.join(sections)}",
        )
    for key in keys[:-1]:
        near = difflib.get_close_matches(key, sorted(leaves), n=1, cutoff=0.85)
        if key not in leaves and near:
            raise ConfigError(
                f"{owner} in {where}: metric '{path}' does not exist ('{key}' is not a metric "
                "ethos computes)",
                hint=f"did you mean '{near[0]}'?",
            )
    leaf = keys[-1]
    if leaf != "*" and leaf not in leaves and not leaf.isdigit():
        close = difflib.get_close_matches(leaf, sorted(leaves), n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"{owner} in {where}: metric '{path}' does not exist (no metric is called '{leaf}')",
            hint=f"{guess}the names ethos knows: docs/governance.md, section 'Metric paths'",
        )


@dataclass(frozen=True)
class Lookup:
    """A resolved metric: its value (None when absent), the interval around it, where it came
    from (the concrete path, after any ``*``), and why it is missing."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    resolved: str = ""
    missing: str | None = None


def lookup(documents: dict[str, Any], path: str, *, larger_is_worse: bool) -> Lookup:
    """Find ``path`` in the run's documents; ``*`` takes the worst case."""
    document, keys = split_path(path)
    root = documents.get(document)
    if root is None:
        return Lookup(None, missing=f"the run has no {document}.json")
    candidates: list[tuple[str, Any, Any]] = [(document, root, None)]
    for key in keys:
        following: list[tuple[str, Any, Any]] = []
        for where, node, _ in candidates:
            if not isinstance(node, dict):
                continue
            chosen = list(node) if key == "*" else [key] if key in node else []
            following.extend((f"{where}.{k}", node[k], node) for k in chosen)
        candidates = following
    found = [
        (where, float(node), parent)
        for where, node, parent in candidates
        if isinstance(node, (int, float)) and not isinstance(node, bool) and math.isfinite(node)
    ] + [
        (where, float(node), parent) for where, node, parent in candidates if isinstance(node, bool)
    ]
    if not found:
        reason = "not found" if not candidates else "not a number (null or text)"
        return Lookup(None, resolved=path, missing=f"metric '{path}' is {reason} in this run")
    where, value, parent = (max if larger_is_worse else min)(found, key=lambda item: item[1])
    low = high = None
    if where.endswith(".value") and isinstance(parent, dict):
        low, high = _number(parent.get("ci_low")), _number(parent.get("ci_high"))
    return Lookup(value, low, high, resolved=where)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
