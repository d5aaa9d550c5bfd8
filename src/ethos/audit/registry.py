"""The registry of audit checks: the one place that knows every check.

The checks import :mod:`ethos.audit.protocol` (the contract); this module imports the checks, so
the contract never imports its implementations. Adding a check is one module plus one line in
:data:`CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ethos.audit.calibration import CalibrationCheck
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
    ExplanationsCheck.name: ExplanationsCheck,
    SlicesCheck.name: SlicesCheck,
}
"""Check name -> check class (called with keyword options, or none for the defaults).

Informativeness comes first: the summary reads it to tell whether the other screens mean anything
(:mod:`ethos.audit.informativeness`)."""


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
