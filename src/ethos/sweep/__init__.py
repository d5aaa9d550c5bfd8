"""Sweeps: train a grid of configs, audit and gate each run, and chart the Pareto fronts.

``ethos sweep CONFIG --grid 'fairness.lambda=[0,1]' --grid 'privacy.epsilon=[1,8,inf]'``;
:func:`sweep` is the same thing from Python.
"""

from ethos.sweep.grid import Axis, Grid, GridError, GridPoint, expand, parse_grid
from ethos.sweep.pareto import non_dominated, staircase
from ethos.sweep.runner import SweepPoint, SweepResult, sweep

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
