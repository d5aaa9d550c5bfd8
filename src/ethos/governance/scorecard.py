"""Scoring a run against a policy: the composite tree, W, the constraints, and the decision.

Decision rule (stated once, here): FAIL when any constraint is broken; otherwise
INSUFFICIENT_EVIDENCE when a constraint marked ``on_thin_evidence: insufficient_evidence`` has a
95 % interval that contains its limit (whichever side the value is on: the data cannot tell PASS
from FAIL; :mod:`ethos.governance.evidence` says how many labelled examples per group would);
otherwise REVIEW when a constraint marked ``on_break: review`` is broken (status
``needs_review``), when W is below the threshold, when a metric the policy needs is missing, or
when a constrained value holds but its 95 % interval crosses the limit; otherwise PASS. A missing
indicator scores 0 (the conservative choice) and is listed as a reason, so it can never raise W.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ethos.governance.evidence import examples_needed, left_out_groups, straddles
from ethos.governance.metric_paths import lookup
from ethos.governance.policy import Composite, Constraint, EvidenceSettings, Indicator, Policy

Decision = Literal["PASS", "REVIEW", "FAIL", "INSUFFICIENT_EVIDENCE"]


@dataclass
class Node:
    """One scored node of the tree: an indicator (with its metric) or a composite."""

    name: str
    path: str
    weight: float
    score: float
    kind: Literal["indicator", "composite"]
    metric: str | None = None
    value: float | None = None
    resolved: str | None = None
    missing: str | None = None
    children: list[Node] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "path": self.path,
            "kind": self.kind,
            "weight": self.weight,
            "score": self.score,
        }
        if self.kind == "indicator":
            out.update(metric=self.metric, value=self.value, resolved=self.resolved)
            if self.missing:
                out["missing"] = self.missing
        else:
            out["children"] = [c.to_dict() for c in self.children]
        return out


@dataclass(frozen=True)
class ConstraintResult:
    label: str
    metric: str
    op: str
    limit: float
    value: float | None
    status: Literal[
        "holds", "broken", "needs_review", "uncertain", "missing", "insufficient_evidence"
    ]
    detail: str
    why: str | None = None
    examples_needed: list[dict[str, Any]] | None = None
    """For ``insufficient_evidence``: per group behind it, the labelled examples that would
    settle it (empty when the metric is not a group disparity)."""


@dataclass
class Scorecard:
    """Everything the gate decided and why."""

    policy: str
    policy_version: str
    threshold: float
    welfare: float
    tree: Node
    constraints: list[ConstraintResult]
    decision: Decision
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "policy_version": self.policy_version,
            "decision": self.decision,
            "welfare": self.welfare,
            "threshold": self.threshold,
            "reasons": self.reasons,
            "constraints": [c.__dict__ for c in self.constraints],
            "tree": self.tree.to_dict(),
        }


def _score_node(
    node: Indicator | Composite, weight: float, documents: dict[str, Any], parent: str
) -> Node:
    path = f"{parent}/{node.name}" if parent else node.name
    if isinstance(node, Indicator):
        found = lookup(documents, node.metric, larger_is_worse=node.direction == "lower")
        score = 0.0 if found.value is None else node.score(found.value)
        return Node(
            node.name,
            path,
            weight,
            score,
            "indicator",
            node.metric,
            found.value,
            found.resolved,
            found.missing,
        )
    weights = node.normalised_weights()
    children = [
        _score_node(child, w, documents, path)
        for child, w in zip(node.components, weights, strict=True)
    ]
    score = sum(c.weight * c.score for c in children)
    return Node(node.name, path, weight, score, "composite", children=children)


def _check(
    constraint: Constraint,
    documents: dict[str, Any],
    uncertain: bool,
    evidence: EvidenceSettings,
) -> ConstraintResult:
    upper = constraint.op in ("<=", "<")
    found = lookup(documents, constraint.metric, larger_is_worse=upper)
    base: dict[str, Any] = dict(
        label=constraint.label,
        metric=constraint.metric,
        op=constraint.op,
        limit=constraint.value,
        value=found.value,
        why=constraint.why,
    )
    if found.value is None:
        return ConstraintResult(**base, status="missing", detail=found.missing or "missing")
    shown = f"{found.resolved} = {found.value:.4g} (limit {constraint.op} {constraint.value:g})"
    if constraint.on_thin_evidence == "insufficient_evidence" and straddles(
        constraint, found.ci_low, found.ci_high
    ):
        needs = examples_needed(
            constraint, found.resolved, found.value, documents.get("audit"), evidence
        )
        settle = "; ".join(n.sentence() for n in needs) or (
            "no per-group estimate for this metric: label more examples of every group"
        )
        small = left_out_groups(found.resolved, documents.get("audit"))
        if small:
            settle += (
                f"; left out of the comparison for too few rows: {', '.join(small)} (label "
                "enough of them to reach the run's min_group_size)"
            )
        return ConstraintResult(
            **base,
            status="insufficient_evidence",
            detail=f"{shown}, but its 95% interval [{found.ci_low:.4g}, {found.ci_high:.4g}] "
            f"contains the limit: {settle}",
            examples_needed=[n.to_dict() for n in needs],
        )
    if not constraint.holds(found.value):
        status: Literal["broken", "needs_review"] = (
            "broken" if constraint.on_break == "fail" else "needs_review"
        )
        return ConstraintResult(**base, status=status, detail=shown)
    bound = found.ci_high if upper else found.ci_low
    exact = constraint.op in ("==", "!=")
    if uncertain and bound is not None and not exact and not constraint.holds(bound):
        return ConstraintResult(
            **base,
            status="uncertain",
            detail=f"{shown}, but its 95% interval reaches {bound:.4g}",
        )
    return ConstraintResult(**base, status="holds", detail=shown)


def _missing_indicators(node: Node) -> list[Node]:
    if node.kind == "indicator":
        return [node] if node.missing else []
    return [m for child in node.children for m in _missing_indicators(child)]


def score_run(policy: Policy, documents: dict[str, Any]) -> Scorecard:
    """Score the run's ``{"audit": ..., "metrics": ..., "manifest": ...}`` against a policy."""
    tree = _score_node(policy.score, 1.0, documents, "")
    results = [
        _check(c, documents, policy.review_uncertain, policy.evidence) for c in policy.constraints
    ]
    reasons: list[str] = []
    broken = [r for r in results if r.status == "broken"]
    for r in broken:
        reasons.append(f"constraint broken: {r.label}: {r.detail}")
    thin = [r for r in results if r.status == "insufficient_evidence"]
    for r in thin:
        reasons.append(f"insufficient evidence: {r.label}: {r.detail}")
    for r in results:
        if r.status == "needs_review":
            reasons.append(f"review required: {r.label}: {r.detail}")
    for r in results:
        if r.status in ("uncertain", "missing"):
            reasons.append(f"constraint {r.status}: {r.label}: {r.detail}")
    for node in _missing_indicators(tree):
        reasons.append(f"indicator missing (scored 0): {node.path}: {node.missing}")
    if tree.score < policy.threshold:
        reasons.append(f"W = {tree.score:.4f} is below the threshold {policy.threshold:g}")
    decision: Decision
    if broken:
        decision = "FAIL"
    elif thin:
        decision = "INSUFFICIENT_EVIDENCE"
    elif reasons:
        decision = "REVIEW"
    else:
        decision = "PASS"
        reasons.append(
            f"every constraint holds and W = {tree.score:.4f} >= threshold {policy.threshold:g}"
        )
    return Scorecard(
        policy=policy.name,
        policy_version=policy.version,
        threshold=policy.threshold,
        welfare=tree.score,
        tree=tree,
        constraints=results,
        decision=decision,
        reasons=reasons,
    )
