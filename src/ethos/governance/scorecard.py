"""Scoring a run against a policy: the composite tree, W, the constraints, and the decision.

Decision rule (stated once, here): FAIL when any constraint is broken; otherwise
INSUFFICIENT_EVIDENCE when a constraint marked ``on_thin_evidence: insufficient_evidence`` has a
95 % interval that contains its limit (whichever side the value is on: the data cannot tell PASS
from FAIL; :mod:`ethos.governance.evidence` says how many labelled examples per group would);
otherwise REVIEW when a constraint marked ``on_break: review`` is broken (status
``needs_review``), when W is below the threshold, when a metric the policy needs is missing, or
when a constrained value holds but its 95 % interval crosses the limit; otherwise PASS. A missing
indicator scores 0 (the conservative choice) and is listed as a reason, so it can never raise W.
A constraint marked ``when_missing: not_applicable`` is recorded as ``not_applicable``, leaving
the decision alone, when the run makes no limit to hold it to (a privacy claim of a non-private
run) or when the section it reads says it does not apply (``{"applicable": false}``: a canary
audit of a run without canaries); a section an audit left out is still missing evidence (REVIEW),
so leaving the canary audit out of a run with canaries cannot pass its gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ethos.governance.evidence import examples_needed, left_out_groups, straddles
from ethos.governance.metric_paths import lookup, split_path
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
    limit: float | None
    value: float | None
    status: Literal[
        "holds",
        "broken",
        "needs_review",
        "uncertain",
        "missing",
        "not_applicable",
        "insufficient_evidence",
    ]
    detail: str
    why: str | None = None
    examples_needed: list[dict[str, Any]] | None = None
    """For ``insufficient_evidence``: per group behind it, the labelled examples that would
    settle it (empty when the metric is not a group disparity)."""
    limit_metric: str | None = None
    """Where a limit read from the run came from (``limit`` is its value); None for a number."""

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        if out["limit_metric"] is None:  # decision.json of a fixed limit is as it always was
            del out["limit_metric"]
        return out


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
            "constraints": [c.to_dict() for c in self.constraints],
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


def declared_not_applicable(documents: dict[str, Any], path: str) -> str | None:
    """The reason a section on ``path`` gives for not applying to this run (``{"applicable":
    false, "reason": ...}``), or None when none says so (the value is then simply missing)."""
    document, keys = split_path(path)
    node: Any = documents.get(document)
    for key in keys:
        if not isinstance(node, dict):
            return None
        if node.get("applicable") is False:
            return str(node.get("reason") or "the run's audit says so")
        node = node.get(key)
    return None


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
        limit=None,
        value=found.value,
        why=constraint.why,
    )
    absent: Literal["not_applicable", "missing"] = (
        "not_applicable" if constraint.when_missing == "not_applicable" else "missing"
    )
    if constraint.limit_metric is not None:
        # The strictest limit the path names: the smallest upper limit, the largest lower one.
        limit = lookup(documents, constraint.limit_metric, larger_is_worse=not upper)
        base["limit_metric"] = constraint.limit_metric
        if limit.value is None:
            why = f"the limit {limit.missing or 'is missing'}"
            if found.value is None:
                why = f"{found.missing or 'missing'}; {why}"
            return ConstraintResult(**base, status=absent, detail=why)
        base["limit"] = limit.value
        constraint = constraint.model_copy(update={"value": limit.value})
    else:
        base["limit"] = constraint.value
    if found.value is None:
        declared = declared_not_applicable(documents, constraint.metric)
        if absent == "not_applicable" and declared is not None:
            return ConstraintResult(**base, status=absent, detail=f"not applicable: {declared}")
        # An audit that left the section out is missing evidence, not a run it does not apply to.
        return ConstraintResult(**base, status="missing", detail=found.missing or "missing")
    limit_shown = f"{base['limit']:g}" + (
        f" = {base['limit_metric']}" if "limit_metric" in base else ""
    )
    shown = f"{found.resolved} = {found.value:.4g} (limit {constraint.op} {limit_shown})"
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
        skipped = [r.label for r in results if r.status == "not_applicable"]
        applying = f" that applies ({len(skipped)} not applicable)" if skipped else ""
        reasons.append(
            f"every constraint{applying} holds and W = {tree.score:.4f} >= threshold "
            f"{policy.threshold:g}"
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
