"""Governance: the ethics policy and its scorecard, the deployment gate, and the ledger.

A policy (``policy.py``) declares weighted indicators, composites and hard constraints; the
scorecard (``scorecard.py``) scores a run's documents against it and decides PASS / REVIEW / FAIL;
``sensitivity.py`` says how far each weight is from flipping that decision; ``gate.py`` writes
the decision into the run directory and the tamper-evident ledger (``ledger.py``).
"""

from ethos.governance.gate import GateResult, gate_run
from ethos.governance.ledger import Ledger, LedgerEntry, LedgerError, VerifyReport
from ethos.governance.policy import Composite, Constraint, Indicator, Policy, load_policy
from ethos.governance.scorecard import Scorecard, score_run
from ethos.governance.sensitivity import weight_sensitivity

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
