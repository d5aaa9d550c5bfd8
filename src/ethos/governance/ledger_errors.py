"""The ledger's user error, kept apart so every ledger module can raise it without import cycles."""

from __future__ import annotations

from ethos.errors import EthosError


class LedgerError(EthosError):
    """A ledger that cannot be opened, written or trusted as given (bad URL, unwritable path,
    wrong signing key, malformed entry)."""
