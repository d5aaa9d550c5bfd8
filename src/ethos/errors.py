"""The one error family users see.

Every mistake a user can make (a wrong key in a config, a missing column, a corrupt file) raises a
subclass of :class:`EthosError` whose message says what was wrong, where, and how to fix it. The CLI
prints that message alone and exits with :data:`USER_ERROR_EXIT_CODE`; anything else that escapes
is a bug in ethos and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

USER_ERROR_EXIT_CODE = 2


class EthosError(Exception):
    """A user mistake, described well enough to fix without reading ethos's source."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  fix: {hint}")


class ConfigError(EthosError):
    """A run configuration (YAML) that is unreadable or does not match the schema."""


class DataError(EthosError):
    """A data file or table that cannot be turned into a valid Dataset."""


class ModelError(EthosError):
    """A model that cannot be found, loaded or used for the requested task."""


def listed(names: Sequence[str], limit: int = 4) -> str:
    """``names`` for an error message: the first ``limit``, then how many more, so a model with a
    hundred offending layers still gets a one-line error."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
