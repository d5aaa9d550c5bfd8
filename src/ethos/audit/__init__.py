"""The audit: fairness, calibration (and later robustness, explanations, privacy) of predictions.

Each part is a pure function on arrays returning a JSON-able section, wrapped by a check that
follows :class:`ethos.audit.protocol.Check`; :data:`ethos.audit.protocol.CHECKS` lists them.
"""

from ethos.audit.calibration import (
    CalibrationCheck,
    brier_score,
    calibration_section,
    expected_calibration_error,
    reliability_diagram,
    reliability_table,
)
from ethos.audit.errors import AuditError, AuditWarning
from ethos.audit.fairness import (
    DISPARITIES,
    FairnessCheck,
    disparities,
    fairness_section,
    group_metrics,
)
from ethos.audit.informativeness import InformativenessCheck, informativeness_section
from ethos.audit.protocol import CHECKS, AuditContext, Check, run_checks, to_jsonable

__all__ = [
    "CHECKS",
    "DISPARITIES",
    "AuditContext",
    "AuditError",
    "AuditWarning",
    "CalibrationCheck",
    "Check",
    "FairnessCheck",
    "InformativenessCheck",
    "brier_score",
    "calibration_section",
    "disparities",
    "expected_calibration_error",
    "fairness_section",
    "group_metrics",
    "informativeness_section",
    "reliability_diagram",
    "reliability_table",
    "run_checks",
    "to_jsonable",
]
