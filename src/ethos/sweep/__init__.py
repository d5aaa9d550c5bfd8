"""Sweeps: train a grid of configs, audit and gate each run, and chart the Pareto fronts.

``ethos sweep CONFIG --grid 'fairness.lambda=[0,1]' --grid 'privacy.epsilon=[1,8,inf]'``;
:func:`sweep` is the same thing from Python.

Members are imported on first use (:mod:`ethos.lazy`).
"""

from typing import TYPE_CHECKING

from ethos.lazy import lazy_exports

if TYPE_CHECKING:
    from ethos.sweep.grid import Axis, Grid, GridError, GridPoint, expand, parse_grid
    from ethos.sweep.pareto import non_dominated, staircase
    from ethos.sweep.runner import SweepPoint, SweepResult, sweep

_EXPORTS = {
    "Axis": "ethos.sweep.grid",
    "Grid": "ethos.sweep.grid",
    "GridError": "ethos.sweep.grid",
    "GridPoint": "ethos.sweep.grid",
    "expand": "ethos.sweep.grid",
    "parse_grid": "ethos.sweep.grid",
    "non_dominated": "ethos.sweep.pareto",
    "staircase": "ethos.sweep.pareto",
    "SweepPoint": "ethos.sweep.runner",
    "SweepResult": "ethos.sweep.runner",
    "sweep": "ethos.sweep.runner",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [
    "Axis",
    "Grid",
    "GridError",
    "GridPoint",
    "SweepPoint",
    "SweepResult",
    "expand",
    "non_dominated",
    "parse_grid",
    "staircase",
    "sweep",
]
