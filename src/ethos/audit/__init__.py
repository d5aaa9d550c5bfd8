"""The audit: fairness, calibration (and later robustness, explanations, privacy) of predictions.

Each part is a pure function on arrays returning a JSON-able section, wrapped by a check that
follows :class:`ethos.audit.protocol.Check`; :data:`ethos.audit.registry.CHECKS` lists them.

Members are imported on first use (:mod:`ethos.lazy`).
"""

from typing import TYPE_CHECKING

from ethos.lazy import lazy_exports

if TYPE_CHECKING:
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
    from ethos.audit.protocol import AuditContext, Check, to_jsonable
    from ethos.audit.registry import CHECKS, run_checks

_EXPORTS = {
    "CalibrationCheck": "ethos.audit.calibration",
    "brier_score": "ethos.audit.calibration",
    "calibration_section": "ethos.audit.calibration",
    "expected_calibration_error": "ethos.audit.calibration",
    "reliability_diagram": "ethos.audit.calibration",
    "reliability_table": "ethos.audit.calibration",
    "AuditError": "ethos.audit.errors",
    "AuditWarning": "ethos.audit.errors",
    "DISPARITIES": "ethos.audit.fairness",
    "FairnessCheck": "ethos.audit.fairness",
    "disparities": "ethos.audit.fairness",
    "fairness_section": "ethos.audit.fairness",
    "group_metrics": "ethos.audit.fairness",
    "InformativenessCheck": "ethos.audit.informativeness",
    "informativeness_section": "ethos.audit.informativeness",
    "CHECKS": "ethos.audit.registry",
    "AuditContext": "ethos.audit.protocol",
    "Check": "ethos.audit.protocol",
    "run_checks": "ethos.audit.registry",
    "to_jsonable": "ethos.audit.protocol",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
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
