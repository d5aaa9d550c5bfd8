"""The registry of audit checks: the one place that knows every check.

The checks import :mod:`ethos.audit.protocol` (the contract); this module imports the checks, so
the contract never imports its implementations. Adding a check is one module plus one line in
:data:`CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ethos.audit.calibration import CalibrationCheck
from ethos.audit.dp_audit import DpAuditCheck
from ethos.audit.errors import AuditError
from ethos.audit.explanations import ExplanationsCheck
from ethos.audit.fairness import FairnessCheck
from ethos.audit.informativeness import InformativenessCheck
from ethos.audit.privacy import PrivacyCheck
from ethos.audit.protocol import AuditContext, Check, to_jsonable
from ethos.audit.robustness import RobustnessCheck
from ethos.audit.slices import SlicesCheck

CHECKS: dict[str, Callable[..., Check]] = {
    InformativenessCheck.name: InformativenessCheck,
    FairnessCheck.name: FairnessCheck,
    CalibrationCheck.name: CalibrationCheck,
    RobustnessCheck.name: RobustnessCheck,
    PrivacyCheck.name: PrivacyCheck,
    DpAuditCheck.name: DpAuditCheck,
    ExplanationsCheck.name: ExplanationsCheck,
    SlicesCheck.name: SlicesCheck,
}
"""Check name -> check class (called with keyword options, or none for the defaults).

Informativeness comes first: the summary reads it to tell whether the other screens mean anything
(:mod:`ethos.audit.informativeness`). A name ``parent.child`` (``privacy.dp_audit``) is a section
nested in its parent's: :func:`nest_sections` puts it there in audit.json, so a policy reads it as
``privacy.dp_audit.epsilon_lower_bound``."""


def nest_sections(sections: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: section}`` with each ``parent.child`` section moved into ``parent``'s section
    (created when the parent check did not run)."""
    nested: dict[str, Any] = {n: s for n, s in sections.items() if "." not in n}
    for name, section in sections.items():
        if "." in name:
            parent, child = name.split(".", 1)
            holder = nested.setdefault(parent, {})
            if not isinstance(holder, dict) or child in holder:
                raise AuditError(f"the {name} section collides with the {parent} section's keys")
            nested[parent] = {**holder, child: section}
    return nested


def run_checks(
    context: AuditContext,
    *,
    names: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the named checks (default: every registered one) and return ``{name: section}``.

    ``options`` maps a check name to the keyword options its class is built with.
    """
    chosen = list(CHECKS) if names is None else list(names)
    unknown = [n for n in chosen if n not in CHECKS]
    if unknown:
        raise AuditError(f"unknown audit checks {unknown}; known: {sorted(CHECKS)}")
    options = options or {}
    return {n: to_jsonable(CHECKS[n](**options.get(n, {})).run(context)) for n in chosen}
