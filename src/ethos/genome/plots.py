"""Figures for the genome module, drawn on ``matplotlib.figure.Figure`` with the Agg canvas.

Using ``Figure`` directly (not ``pyplot``) keeps no global state and needs no display, so the
functions are safe in servers and tests; each returns the figure for the caller to save or embed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ethos.genome.ranking import GuideReport
from ethos.genome.regulation import EditEffect


def _figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_weights(
    weights: npt.NDArray[np.float64],
    *,
    true_weights: npt.NDArray[np.float64] | None = None,
    gene_names: Sequence[str] = (),
    regulator_names: Sequence[str] = (),
) -> Figure:
    """Heat map of the estimated ``W``; with ``true_weights``, also estimated against planted."""
    fig = _figure(9.0 if true_weights is not None else 5.0, 4.0)
    axes = fig.subplots(1, 2 if true_weights is not None else 1, squeeze=False)[0]
    limit = float(np.max(np.abs(weights))) or 1.0
    image = axes[0].imshow(weights, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axes[0].set_title("estimated W (gene x regulator)")
    axes[0].set_xlabel("regulator")
    axes[0].set_ylabel("gene")
    if regulator_names:
        axes[0].set_xticks(range(len(regulator_names)), regulator_names, rotation=90)
    if gene_names:
        axes[0].set_yticks(range(len(gene_names)), gene_names)
    fig.colorbar(image, ax=axes[0], label="effect per unit regulator")
    if true_weights is not None:
        ax = axes[1]
        ax.scatter(true_weights.ravel(), weights.ravel(), s=12)
        lo = float(min(true_weights.min(), weights.min()))
        hi = float(max(true_weights.max(), weights.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1, linestyle="--")
        ax.set_xlabel("planted W")
        ax.set_ylabel("estimated W")
        ax.set_title("recovery of the planted weights")
    return fig


def plot_edit_effect(effect: EditEffect) -> Figure:
    """Predicted expression change per gene with its uncertainty band as error bars."""
    frame = effect.to_frame()
    fig = _figure(max(4.0, 0.4 * len(frame) + 2.0), 3.5)
    ax = fig.subplots()
    x = np.arange(len(frame))
    errors = np.vstack([frame["delta_y"] - frame["lower"], frame["upper"] - frame["delta_y"]])
    ax.bar(x, frame["delta_y"], yerr=np.clip(errors, 0, None), capsize=3, color="#4C72B0")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, list(frame.index), rotation=90)
    ax.set_ylabel("predicted expression change")
    ax.set_title(f"edit effect, {100 * effect.level:.0f} % {effect.interval} band")
    return fig


def plot_offtarget_counts(reports: Sequence[GuideReport]) -> Figure:
    """Stacked bars: off-targets of each guide by mismatch count."""
    fig = _figure(max(4.0, 0.5 * len(reports) + 2.0), 3.5)
    ax = fig.subplots()
    if not reports:
        ax.set_title("no guides")
        return fig
    max_mm = max(r.max_mismatches for r in reports)
    bottom = np.zeros(len(reports))
    x = np.arange(len(reports))
    for m in range(max_mm + 1):
        counts = np.array([r.mismatch_histogram().get(m, 0) for r in reports], dtype=float)
        ax.bar(x, counts, bottom=bottom, label=f"{m} mm")
        bottom += counts
    ax.set_xticks(x, [r.guide for r in reports], rotation=90, fontsize=7, family="monospace")
    ax.set_ylabel("off-target sites")
    ax.set_title("off-targets by mismatch count")
    ax.legend(fontsize=7)
    return fig
