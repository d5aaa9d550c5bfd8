"""How fragile is a decision? For each weight, the smallest relative change that flips it.

Changing one weight wᵢ of a composite to wᵢ(1+δ) while its siblings are rescaled to keep the
level summing to 1 moves that composite's score linearly:
S(δ) = Rᵢ + wᵢ(1+δ)(Fᵢ - Rᵢ), where Rᵢ is the siblings' weighted mean score. W is linear in S
(through the ancestors' normalised weights, whose product is cᵢ), so
W(δ) = W₀ + cᵢ·wᵢ·δ·(Fᵢ - Rᵢ), and the change that brings W to the threshold is
δ* = (threshold - W₀) / (cᵢ·wᵢ·(Fᵢ - Rᵢ)). It flips the decision only where the threshold is what
decides it (PASS ↔ REVIEW on W); weights cannot repair a broken constraint or a missing metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ethos.governance.scorecard import Node, Scorecard


@dataclass(frozen=True)
class WeightSensitivity:
    path: str
    weight: float
    relative_change: float | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _walk(node: Node, scale: float) -> list[tuple[Node, Node, float]]:
    """(child, parent, product of the parent's and its ancestors' weights) for every weight."""
    found: list[tuple[Node, Node, float]] = []
    for child in node.children:
        found.append((child, node, scale))
        if child.kind == "composite":
            found.extend(_walk(child, scale * child.weight))
    return found


def weight_sensitivity(card: Scorecard) -> list[WeightSensitivity]:
    """One entry per weight in the tree (root excluded), in tree order."""
    results: list[WeightSensitivity] = []
    only_threshold = (
        card.decision in ("PASS", "REVIEW")
        and not any(c.status != "holds" for c in card.constraints)
        and not any(r.startswith("indicator missing") for r in card.reasons)
    )
    for child, parent, scale in _walk(card.tree, 1.0):
        if not only_threshold:
            results.append(
                WeightSensitivity(
                    child.path,
                    child.weight,
                    None,
                    "the decision rests on constraints or missing metrics; no weight flips it",
                )
            )
            continue
        w = child.weight
        if w >= 1.0:
            results.append(WeightSensitivity(child.path, w, None, "the only weight at its level"))
            continue
        rest = (parent.score - w * child.score) / (1.0 - w)
        slope = scale * w * (child.score - rest)
        if slope == 0.0:
            results.append(
                WeightSensitivity(child.path, w, None, "scores equal to its siblings': no effect")
            )
            continue
        delta = (card.threshold - card.welfare) / slope
        if card.decision == "PASS" and card.welfare == card.threshold:
            delta = 0.0
        feasible = 0.0 <= w * (1.0 + delta) <= 1.0
        results.append(
            WeightSensitivity(
                child.path,
                w,
                delta if feasible else None,
                f"W reaches the threshold at weight {w * (1 + delta):.4f}"
                if feasible
                else "no weight in [0, 1] moves W across the threshold",
            )
        )
    return results
