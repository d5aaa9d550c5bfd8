"""The audit's user errors and warnings.

Every input the audit cannot use as given (arrays of different lengths, an empty table, a sensitive
attribute with a single value, probabilities outside [0, 1], labels outside the model's label space)
raises :class:`AuditError`, so the CLI can print one message and exit with
:data:`ethos.errors.USER_ERROR_EXIT_CODE` instead of a traceback. Results that are computed but
should be read with care (too few examples for a stable calibration estimate) emit
:class:`AuditWarning` and also carry the warning in the JSON section itself.
"""

from __future__ import annotations

from ethos.errors import EthosError


class AuditError(EthosError):
    """Predictions, labels, scores or sensitive features that the audit cannot use as given."""


class AuditWarning(UserWarning):
    """An audit number that was computed but should be read with care (e.g. a small sample)."""
