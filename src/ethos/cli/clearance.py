"""The warning `ethos export` and `ethos predict` give for a run not cleared for decisions.

Both let a user take a model out of ethos's governance, so both say so, the same way, when the
run's recorded decision does not clear it.
"""

from __future__ import annotations

from typing import Any

from ethos.cli.output import err_console


def warn_if_not_cleared(run: Any, ledger_url: str | None) -> None:
    """Say so (on stderr) when the run's recorded decision does not clear it for decisions."""
    from ethos.governance.decision_record import governance_warning

    warning = governance_warning(run, ledger_url)
    if warning:
        err_console.print(f"warning: {warning}", markup=False)
