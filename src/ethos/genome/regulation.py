"""A linear regulation model ``Y = W X``: which regulators drive which genes, and by how much.

``X`` holds regulator levels (``n_regulators x n_samples``), ``Y`` target-gene expression
(``n_genes x n_samples``) — columns are samples, as in the model's equation — and ``W``
(``n_genes x n_regulators``) the effect of one unit of each regulator on each gene. There is no
intercept: centre the data first if baseline expression matters. An edit that changes regulator
levels by ``dx`` is predicted to change expression by ``dy = W dx``.

Estimators (scikit-learn style: the constructor stores options, :meth:`RegulationModel.fit`
validates and fits):

* ``ols``   ``W = argmin ||Y - W X||_F``, solved by ``numpy.linalg.lstsq``;
* ``ridge`` ``W = Y X^T (X X^T + alpha I)^-1`` (Hoerl & Kennard, Technometrics 12:55, 1970);
* ``nnls``  each row of ``W`` by non-negative least squares (Lawson & Hanson, 1974, via
  ``scipy.optimize.nnls``) — for activators-only models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, stats

from ethos.genome.errors import GenomeError

Method = Literal["ols", "ridge", "nnls"]
Interval = Literal["auto", "analytic", "bootstrap"]
METHODS: tuple[Method, ...] = ("ols", "ridge", "nnls")
FloatArray = npt.NDArray[np.float64]


def random_weights(
    n_genes: int,
    n_regulators: int,
    *,
    density: float = 0.5,
    nonnegative: bool = False,
    seed: int = 0,
) -> FloatArray:
    """A sparse random ``W``: each entry is non-zero with probability ``density``."""
    if n_genes < 1 or n_regulators < 1:
        raise GenomeError(
            f"need at least one gene and one regulator, got {n_genes}, {n_regulators}"
        )
    if not 0.0 < density <= 1.0:
        raise GenomeError(f"density={density} is outside (0, 1]")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.2, 2.0, size=(n_genes, n_regulators))
    if not nonnegative:
        values *= rng.choice([-1.0, 1.0], size=values.shape)
    return np.where(rng.random(values.shape) < density, values, 0.0)


def simulate_expression(
    weights: FloatArray,
    *,
    n_samples: int,
    noise_sd: float = 0.0,
    seed: int = 0,
) -> tuple[FloatArray, FloatArray]:
    """Draw regulator levels ``X`` (log-normal, as expression levels are) and ``Y = W X + e``.

    ``e`` is i.i.d. Gaussian with standard deviation ``noise_sd`` (expression units).
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise GenomeError(f"weights must be a 2-D matrix (genes x regulators), got shape {w.shape}")
    if n_samples < 1:
        raise GenomeError(f"n_samples={n_samples} must be positive")
    if noise_sd < 0:
        raise GenomeError(f"noise_sd={noise_sd} must be non-negative")
    rng = np.random.default_rng(seed)
    x = rng.lognormal(mean=0.0, sigma=0.5, size=(w.shape[1], n_samples))
    y = w @ x + noise_sd * rng.standard_normal((w.shape[0], n_samples))
    return x, y


@dataclass(frozen=True)
class EditEffect:
    """Predicted expression change of each gene after an edit ``delta_x``, with a band.

    ``lower``/``upper`` bound the change at confidence ``level`` (``interval`` says how:
    ``analytic`` t-interval for OLS, or ``bootstrap`` percentile interval over resampled samples).
    """

    delta_x: FloatArray
    delta_y: FloatArray
    lower: FloatArray
    upper: FloatArray
    level: float
    interval: str
    gene_names: tuple[str, ...] = field(default=())
    regulator_names: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """One row per gene: predicted change and its band."""
        names = self.gene_names or tuple(f"gene{i}" for i in range(self.delta_y.size))
        return pd.DataFrame(
            {"delta_y": self.delta_y, "lower": self.lower, "upper": self.upper},
            index=pd.Index(names, name="gene"),
        )

    def __repr__(self) -> str:
        return (
            f"<EditEffect {self.delta_y.size} genes, {100 * self.level:.0f} % {self.interval} "
            f"band, largest |dy| = {np.max(np.abs(self.delta_y)):.3g}>"
        )


def _as_matrix(data: FloatArray | pd.DataFrame, what: str) -> tuple[FloatArray, tuple[str, ...]]:
    names: tuple[str, ...] = ()
    if isinstance(data, pd.DataFrame):
        names = tuple(str(i) for i in data.index)
        data = data.to_numpy()
    try:
        arr = np.asarray(data, dtype=float)
    except (TypeError, ValueError) as exc:
        raise GenomeError(f"{what} must be numeric: {exc}") from None
    if arr.ndim != 2:
        raise GenomeError(f"{what} must be a 2-D matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise GenomeError(f"{what} contains NaN or infinite values", hint="impute or drop them")
    return arr, names


def _fit_weights(x: FloatArray, y: FloatArray, method: Method, alpha: float) -> FloatArray:
    if method == "ols":
        return np.asarray(np.linalg.lstsq(x.T, y.T, rcond=None)[0].T)
    if method == "ridge":
        gram = x @ x.T + alpha * np.eye(x.shape[0])
        return np.asarray(np.linalg.solve(gram, x @ y.T).T)
    return np.vstack([optimize.nnls(x.T, row)[0] for row in y])


class RegulationModel:
    """Estimate ``W`` in ``Y = W X`` and predict the effect of edits (see the module docstring)."""

    def __init__(self, method: Method = "ols", *, alpha: float = 1.0) -> None:
        self.method = method
        self.alpha = alpha

    def fit(self, x: FloatArray | pd.DataFrame, y: FloatArray | pd.DataFrame) -> RegulationModel:
        """Fit on regulators ``x`` (regulators x samples) and expression ``y`` (genes x samples)."""
        if self.method not in METHODS:
            raise GenomeError(
                f"unknown regulation method {self.method!r}", hint=f"use one of {METHODS}"
            )
        if self.method == "ridge" and not self.alpha > 0:
            raise GenomeError(f"ridge alpha={self.alpha} must be positive")
        xm, regulators = _as_matrix(x, "X (regulators x samples)")
        ym, genes = _as_matrix(y, "Y (genes x samples)")
        if xm.shape[1] != ym.shape[1]:
            raise GenomeError(
                f"X has {xm.shape[1]} samples (columns) but Y has {ym.shape[1]}",
                hint="both matrices need one column per sample, in the same order",
            )
        n_reg, n_samples = xm.shape
        if self.method == "ols" and np.linalg.matrix_rank(xm) < n_reg:
            raise GenomeError(
                f"X has rank {np.linalg.matrix_rank(xm)} < {n_reg} regulators "
                f"({n_samples} samples): least squares cannot separate their effects",
                hint="add samples, drop collinear regulators, or use method='ridge'",
            )
        self.weights_ = _fit_weights(xm, ym, self.method, self.alpha)
        self.x_, self.y_ = xm, ym
        self.regulator_names_ = regulators or tuple(f"reg{i}" for i in range(n_reg))
        self.gene_names_ = genes or tuple(f"gene{i}" for i in range(ym.shape[0]))
        dof = max(n_samples - n_reg, 1)
        self.residual_sd_ = np.sqrt(((ym - self.weights_ @ xm) ** 2).sum(axis=1) / dof)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise GenomeError("the regulation model is not fitted yet", hint="call fit(X, Y) first")

    def predict(self, x: FloatArray | pd.DataFrame) -> FloatArray:
        """Expression ``W X`` for regulator levels ``x`` (regulators x samples)."""
        self._check_fitted()
        xm, _ = _as_matrix(x, "X (regulators x samples)")
        if xm.shape[0] != self.weights_.shape[1]:
            raise GenomeError(
                f"X has {xm.shape[0]} regulators; the model has {self.weights_.shape[1]}"
            )
        return np.asarray(self.weights_ @ xm)

    def predict_edit(
        self,
        delta_x: npt.ArrayLike,
        *,
        level: float = 0.95,
        interval: Interval = "auto",
        n_boot: int = 200,
        seed: int = 0,
    ) -> EditEffect:
        """Expression change ``dy = W dx`` of an edit changing regulator levels by ``delta_x``.

        The band is the analytic t-interval for OLS
        (``Var(dy_g) = s_g^2 dx^T (X X^T)^-1 dx`` with ``n - p`` degrees of freedom) and a
        bootstrap percentile interval over resampled samples otherwise (``interval="auto"``).
        """
        self._check_fitted()
        dx = np.asarray(delta_x, dtype=float).ravel()
        if dx.size != self.weights_.shape[1]:
            raise GenomeError(
                f"the edit changes {dx.size} regulators; the model has {self.weights_.shape[1]}",
                hint=f"give one change per regulator: {', '.join(self.regulator_names_)}",
            )
        if not 0.0 < level < 1.0:
            raise GenomeError(f"level={level} must be inside (0, 1)")
        mode = (
            ("analytic" if self.method == "ols" else "bootstrap")
            if interval == "auto"
            else interval
        )
        if mode == "analytic" and self.method != "ols":
            raise GenomeError(
                "the analytic band exists only for method='ols'", hint="use bootstrap"
            )
        dy = self.weights_ @ dx
        if mode == "analytic":
            n_reg, n_samples = self.x_.shape
            leverage = float(dx @ np.linalg.solve(self.x_ @ self.x_.T, dx))
            half = stats.t.ppf(0.5 + level / 2, max(n_samples - n_reg, 1)) * self.residual_sd_
            half = half * np.sqrt(leverage)
            lower, upper = dy - half, dy + half
        elif mode == "bootstrap":
            if n_boot < 10:
                raise GenomeError(f"n_boot={n_boot} is too small for a percentile band; use >= 10")
            rng = np.random.default_rng(seed)
            n_samples = self.x_.shape[1]
            draws = np.empty((n_boot, dy.size))
            for b in range(n_boot):
                cols = rng.integers(0, n_samples, n_samples)
                w = _fit_weights(self.x_[:, cols], self.y_[:, cols], self.method, self.alpha)
                draws[b] = w @ dx
            lower, upper = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2], axis=0)
        else:
            raise GenomeError(f"unknown interval {interval!r}; use auto, analytic or bootstrap")
        return EditEffect(
            delta_x=dx,
            delta_y=dy,
            lower=np.asarray(lower),
            upper=np.asarray(upper),
            level=level,
            interval=mode,
            gene_names=self.gene_names_,
            regulator_names=self.regulator_names_,
        )

    def __repr__(self) -> str:
        fitted = (
            f", fitted {self.weights_.shape[0]} genes x {self.weights_.shape[1]} regulators"
            if hasattr(self, "weights_")
            else ""
        )
        alpha = f", alpha={self.alpha}" if self.method == "ridge" else ""
        return f"RegulationModel(method={self.method!r}{alpha}{fitted})"
