"""Governance: the ethics policy and its scorecard, the deployment gate, and the ledger.

A policy (``policy.py``) declares weighted indicators, composites and hard constraints; the
scorecard (``scorecard.py``) scores a run's documents against it and decides PASS / REVIEW / FAIL;
``sensitivity.py`` says how far each weight is from flipping that decision; ``gate.py`` writes
the decision into the run directory and the tamper-evident ledger (``ledger.py``).

Members are imported on first use (:mod:`ethos.lazy`).
"""

from typing import TYPE_CHECKING

from ethos.lazy import lazy_exports

if TYPE_CHECKING:
    from ethos.governance.gate import GateResult, gate_run
    from ethos.governance.ledger import Ledger, LedgerEntry, LedgerError, VerifyReport
    from ethos.governance.policy import Composite, Constraint, Indicator, Policy, load_policy
    from ethos.governance.scorecard import Scorecard, score_run
    from ethos.governance.sensitivity import weight_sensitivity

_EXPORTS = {
    "GateResult": "ethos.governance.gate",
    "gate_run": "ethos.governance.gate",
    "Ledger": "ethos.governance.ledger",
    "LedgerEntry": "ethos.governance.ledger",
    "LedgerError": "ethos.governance.ledger",
    "VerifyReport": "ethos.governance.ledger",
    "Composite": "ethos.governance.policy",
    "Constraint": "ethos.governance.policy",
    "Indicator": "ethos.governance.policy",
    "Policy": "ethos.governance.policy",
    "load_policy": "ethos.governance.policy",
    "Scorecard": "ethos.governance.scorecard",
    "score_run": "ethos.governance.scorecard",
    "weight_sensitivity": "ethos.governance.sensitivity",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [
    "Composite",
    "Constraint",
    "GateResult",
    "Indicator",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "Policy",
    "Scorecard",
    "VerifyReport",
    "gate_run",
    "load_policy",
    "score_run",
    "weight_sensitivity",
]
