"""The gene-editing module's user errors.

Every mistake a user can make with sequences, guides, PAM patterns or expression matrices raises
:class:`GenomeError`, so the top-level CLI can print one message and exit with
:data:`ethos.errors.USER_ERROR_EXIT_CODE` instead of showing a traceback.
"""

from __future__ import annotations

from ethos.errors import EthosError


class GenomeError(EthosError):
    """A sequence, guide, PAM pattern or expression matrix that ethos cannot use as given."""
