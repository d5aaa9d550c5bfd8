"""The `ethos` command line. Every command is a thin call into the public Python API (:mod:`ethos`).

:mod:`ethos.cli.root` holds the root group and :func:`main`; each command lives in its own module,
imported only when the command is used (:mod:`ethos.cli.lazy_group`), so the command line starts
in a fraction of a second however heavy a command's libraries are.

User mistakes (EthosError) are printed as one message without a traceback and exit with code 2;
anything else is a bug and keeps its traceback.
"""

from typing import TYPE_CHECKING

from ethos.cli.root import app, main
from ethos.lazy import lazy_exports

if TYPE_CHECKING:
    from ethos.cli.demo import _example_path as _example_path
    from ethos.cli.train import _train_and_report as _train_and_report

_EXPORTS = {
    "_example_path": "ethos.cli.demo",
    "_train_and_report": "ethos.cli.train",
}
"""Helpers that tests reach as ``ethos.cli.<name>``, imported with their command on first use."""

__getattr__ = lazy_exports(__name__, _EXPORTS)[0]  # dir() keeps listing app and main
__all__ = ["app", "main"]
