"""The ethics policy: declared values as weighted indicators, composites and hard constraints.

A policy is a YAML file validated here. Its ``score`` is a tree: a composite is a weighted sum of
indicators and composites, to any depth, so a social-welfare score W = Σ wᵢFᵢ, a health
sub-score F_H = g1*P + g2*D + g3*M and a public-understanding score K = a*C + b*A are all the same
structure. An indicator reads one metric from the run's documents and maps it linearly onto
[0, 1] between a "worst" and a "best" value. Constraints are comparisons that must hold
whatever W is: a broken one fails the decision, or, with ``on_break: review``, sends it to a
named human's recorded review instead. An optional ``monitoring`` section sets the limits that
raise alerts once the model is served (see ``monitoring.py``).

A policy has a ``subject``: ``model`` (the default; scored by ``ethos gate`` on a run's audit,
metrics and manifest) or ``edit`` (a gene-edit request, scored by ``ethos genome review`` on the
``edit`` document). The engine, the decision rule and the ledger are the same for both.

Weights at each level must sum to 1 (a typo should not silently re-weight a policy) unless the
composite says ``normalise: true``, in which case they are rescaled and the scorecard says so.
"""

from __future__ import annotations

import difflib
import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from ethos.errors import ConfigError
from ethos.governance.monitoring import MonitorThresholds

WEIGHT_TOLERANCE = 1e-6
OPERATORS = ("<=", "<", ">=", ">", "==", "!=")
DOCUMENTS = ("audit", "metrics", "manifest")
"""Metric paths start with the document they read; a path without one reads audit.json."""


class PolicyError(ConfigError):
    """A policy file that cannot be used as written."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Indicator(_Strict):
    """One measured quantity, normalised to a score F in [0, 1]."""

    name: str
    metric: str = Field(description="Path into audit.json / metrics.json / manifest.json.")
    direction: Literal["higher", "lower"] = Field(description="Which way is better.")
    worst: float = Field(description="Value that scores 0 (and anything beyond it).")
    best: float = Field(description="Value that scores 1 (and anything beyond it).")
    weight: Annotated[float, Field(ge=0, le=1)]
    why: str | None = None

    @model_validator(mode="after")
    def _direction_matches_range(self) -> Indicator:
        if self.best == self.worst:
            raise ValueError(f"indicator '{self.name}': best and worst are both {self.best}")
        if (self.direction == "higher") != (self.best > self.worst):
            raise ValueError(
                f"indicator '{self.name}' says {self.direction} is better, but best "
                f"({self.best}) is {'below' if self.best < self.worst else 'above'} worst "
                f"({self.worst})"
            )
        return self

    def score(self, value: float) -> float:
        """Linear between worst (0) and best (1), clipped."""
        fraction = (value - self.worst) / (self.best - self.worst)
        return min(1.0, max(0.0, fraction))


class Composite(_Strict):
    """A weighted sum of indicators and composites."""

    name: str
    weight: Annotated[float, Field(ge=0, le=1)] = 1.0
    normalise: bool = Field(
        default=False, description="Rescale the weights below to sum to 1 instead of refusing."
    )
    components: list[Component] = Field(min_length=1)
    why: str | None = None

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> Composite:
        total = sum(c.weight for c in self.components)
        if total <= 0:
            raise ValueError(f"composite '{self.name}': its weights are all zero")
        if not self.normalise and abs(total - 1.0) > WEIGHT_TOLERANCE:
            listed = ", ".join(f"{c.name}={c.weight:g}" for c in self.components)
            raise ValueError(
                f"composite '{self.name}': weights sum to {total:g}, not 1 ({listed}); fix them "
                "or set normalise: true to rescale"
            )
        names = [c.name for c in self.components]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"composite '{self.name}': repeated names {duplicated}")
        return self

    def normalised_weights(self) -> list[float]:
        total = sum(c.weight for c in self.components)
        return [c.weight / total for c in self.components]


class Constraint(_Strict):
    """A hard limit: it must hold whatever the weighted score is.

    ``value`` is a number, or the metric path of another number of the same run: ``metric:
    privacy.dp_audit.epsilon_lower_bound, op: "<=", value: manifest.training.privacy.epsilon``
    compares the audited lower bound on epsilon with the accountant's claim. A ``*`` in that
    path takes the strictest limit (the smallest for ``<=``/``<``, the largest for ``>=``/``>``).
    """

    metric: str
    op: Literal["<=", "<", ">=", ">", "==", "!="]
    value: float | str = Field(
        description="The limit: a number, or the metric path of a number of the same run."
    )
    name: str | None = None
    why: str | None = None
    on_break: Literal["fail", "review"] = Field(
        default="fail",
        description="What a broken constraint does: fail the decision, or make it REVIEW (a "
        "named human's approval recorded in the ledger can then clear it).",
    )

    on_thin_evidence: Literal["review", "insufficient_evidence"] = Field(
        default="review",
        description="When the value's 95% interval contains the limit (it cannot tell PASS from "
        "FAIL): review makes the decision REVIEW when the value holds (a broken value still "
        "fails); insufficient_evidence makes it INSUFFICIENT_EVIDENCE either way, with the "
        "labelled examples per group that would settle it.",
    )

    when_missing: Literal["review", "not_applicable"] = Field(
        default="review",
        description="When the metric (or a limit read from the run) is absent: review makes the "
        "decision REVIEW (the default: missing evidence never passes); not_applicable records "
        "the constraint as not applying to this run where the run says so: a limit the run does "
        "not have (the privacy claim of a non-private run), or a section that declares "
        "itself not applicable (the canary audit of a run without canaries). A section the "
        "audit left out is missing evidence either way.",
    )

    @property
    def limit_metric(self) -> str | None:
        """The metric path the limit is read from, or None for a fixed number."""
        return self.value if isinstance(self.value, str) else None

    @property
    def label(self) -> str:
        shown = self.value if isinstance(self.value, str) else f"{self.value:g}"
        return self.name or f"{self.metric} {self.op} {shown}"

    def holds(self, observed: float) -> bool:
        limit = self.value
        if isinstance(limit, str):
            raise TypeError(f"constraint '{self.label}': resolve the limit {limit} first")
        return bool(
            {
                "<=": observed <= limit,
                "<": observed < limit,
                ">=": observed >= limit,
                ">": observed > limit,
                "==": math.isclose(observed, limit),
                "!=": not math.isclose(observed, limit),
            }[self.op]
        )


class EvidenceSettings(_Strict):
    """How sure "more examples would settle it" must be: the test behind the estimate."""

    alpha: Annotated[float, Field(gt=0, lt=1)] = Field(
        default=0.05, description="Significance: the interval is the (1 - alpha) one."
    )
    power: Annotated[float, Field(ge=0.5, lt=1)] = Field(
        default=0.8,
        description="Probability that the interval clears the limit after labelling the "
        "estimated examples, if the observed rates are the true ones.",
    )


class Policy(_Strict):
    """What an organisation declared: a score tree, a threshold, and hard constraints."""

    name: str
    version: str = "1"
    description: str = ""
    subject: Literal["model", "edit"] = Field(
        default="model",
        description="What the policy decides on: a trained model (ethos gate) or a gene-edit "
        "request (ethos genome review).",
    )
    threshold: Annotated[float, Field(ge=0, le=1)] = Field(
        description="PASS needs W at or above this (and every constraint holding)."
    )
    score: Composite
    constraints: list[Constraint] = Field(default_factory=list)
    review_uncertain: bool = Field(
        default=True,
        description="REVIEW when a constrained value holds but its 95% interval crosses the limit.",
    )
    evidence: EvidenceSettings = Field(
        default_factory=EvidenceSettings,
        description="Alpha and power for the examples an INSUFFICIENT_EVIDENCE decision asks for.",
    )
    monitoring: MonitorThresholds | None = Field(
        default=None,
        description="Drift and feedback limits for the served model (ethos serve); without "
        "this section serving uses MonitorThresholds' defaults.",
    )

    def indicators(self) -> list[Indicator]:
        found: list[Indicator] = []

        def walk(node: Indicator | Composite) -> None:
            if isinstance(node, Indicator):
                found.append(node)
            else:
                for child in node.components:
                    walk(child)

        walk(self.score)
        return found


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "composite" if "components" in value else "indicator"
    return "composite" if isinstance(value, Composite) else "indicator"


Component = Annotated[
    Annotated[Indicator, Tag("indicator")] | Annotated[Composite, Tag("composite")],
    Discriminator(_kind),
]
Composite.model_rebuild()
Policy.model_rebuild()


def bundled_policies() -> list[str]:
    folder = resources.files("ethos.governance.policies")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def policy_text(name: str) -> str:
    return (resources.files("ethos.governance.policies") / f"{name}.yaml").read_text("utf-8")


def load_policy(source: str | Path, *, subject: Literal["model", "edit"] | None = None) -> Policy:
    """A policy from a YAML file or a bundled name (medical, criminal-justice, credit,
    genome-edit); with ``subject``, a policy written for another subject is refused."""
    text: str
    where = str(source)
    if str(source) in bundled_policies() and not Path(source).exists():
        text = policy_text(str(source))
        where = f"bundled policy '{source}'"
    else:
        path = Path(source)
        if not path.is_file():
            close = difflib.get_close_matches(str(source), bundled_policies(), n=1)
            guess = f"did you mean '{close[0]}'? " if close else ""
            raise PolicyError(
                f"policy {source} is neither a file nor a bundled policy",
                hint=f"{guess}bundled: {', '.join(bundled_policies())}",
            )
        text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {where} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"policy {where} must be a mapping with name, threshold, score")
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(err)}" for err in exc.errors())
        raise PolicyError(f"policy {where} is invalid:\n{problems}") from None
    from ethos.governance.metric_paths import check_metric_path

    for indicator in policy.indicators():
        check_metric_path(indicator.metric, f"indicator '{indicator.name}'", where)
    for constraint in policy.constraints:
        check_metric_path(constraint.metric, f"constraint '{constraint.label}'", where)
        if constraint.limit_metric is not None:
            check_metric_path(constraint.limit_metric, f"constraint '{constraint.label}'", where)
    _check_subject(policy, where, subject)
    return policy


def _check_subject(policy: Policy, where: str, wanted: str | None) -> None:
    """Edit policies read only the ``edit`` document, model policies never do; and a caller that
    scores one subject refuses a policy written for the other."""
    from ethos.governance.metric_paths import split_path

    paths = [i.metric for i in policy.indicators()] + [
        path for c in policy.constraints for path in (c.metric, c.limit_metric) if path is not None
    ]
    for path in paths:
        reads_edit = split_path(path)[0] == "edit"
        if reads_edit != (policy.subject == "edit"):
            raise PolicyError(
                f"policy {where} has subject '{policy.subject}' but metric '{path}' "
                + ("is not in the edit document" if not reads_edit else "reads an edit request"),
                hint="an edit policy reads only edit.* metrics; a model policy reads audit, "
                "metrics and manifest",
            )
    if wanted is not None and policy.subject != wanted:
        command = "ethos genome review" if policy.subject == "edit" else "ethos gate"
        raise PolicyError(
            f"policy {where} has subject '{policy.subject}', but this decision is about "
            f"subject '{wanted}'",
            hint=f"use it with {command}, or choose a policy with subject: {wanted}",
        )


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"] if str(p) not in ("indicator", "composite"))
    if err["type"] == "literal_error" and err["loc"][-1] == "op":
        return f"{where}: operator {err['input']!r} is not one of {', '.join(OPERATORS)}"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    return f"{where}: {err['msg']}"
