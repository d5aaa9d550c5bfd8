"""Package namespaces that import their members on first use.

A package ``__init__`` that imports every submodule makes ``import ethos.governance.ledger`` pay
for the gate, the scorecard and (through them) the audit, scikit-learn and fairlearn; the neuro
ledger sink and ``ethos --help`` paid seconds for names they never used. With
:func:`lazy_exports` a package keeps its convenient names (``from ethos.audit import
FairnessCheck`` still works) while importing a submodule only when one of its names is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: name -> the module that defines it.

    Use in a package ``__init__``: ``__getattr__, __dir__ = lazy_exports(__name__, {...})``, with
    the same names imported under ``if TYPE_CHECKING:`` for type checkers.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
