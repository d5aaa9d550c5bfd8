"""Governance: accountability for every run, decision and approval.

Today this is the tamper-evident ledger; policy, scorecard, gate and model card join it here.
"""

from ethos.governance.ledger import Ledger, LedgerEntry, LedgerError, VerifyReport

__all__ = ["Ledger", "LedgerEntry", "LedgerError", "VerifyReport"]
