"""The neural-interface module's user errors.

Every mistake a user can make with recordings, decoders, stimulation limits or closed-loop
settings raises :class:`NeuroError`, so the top-level CLI can print one message and exit with
:data:`ethos.errors.USER_ERROR_EXIT_CODE` instead of showing a traceback.
"""

from __future__ import annotations

from ethos.errors import EthosError


class NeuroError(EthosError):
    """A recording, decoder input, stimulation command or loop setting ethos cannot use as given."""
