"""The decoder family: one protocol, one registry, three pipelines.

Every decoder is a scikit-learn :class:`~sklearn.pipeline.Pipeline` taking signals of shape
(n_epochs, n_channels, n_times) in volts, band-passed 8-30 Hz, and starting with
:class:`~ethos.neuro.features.InputGuard`. Adding a decoder is one factory plus one registry line;
``tests/neuro/test_decoders.py`` runs the same contract over every entry of :data:`DECODERS`.

* ``csp_lda``: common spatial patterns (Ramoser, Müller & Pfurtscheller 2000, IEEE TRE 8:441)
  on log-variance, then linear discriminant analysis; MNE's ``CSP``.
* ``tangent_space``: trial covariances projected to the tangent space of the SPD manifold at
  their Riemannian mean, then logistic regression (Barachant et al. 2012, IEEE TBME 59:920);
  pyRiemann.
* ``bandpower_mlp``: log band power in five mu/beta sub-bands per channel, standardised, then a
  PyTorch MLP (:class:`~ethos.neuro.mlp.TorchMLPClassifier`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
from mne.decoding import CSP
from mne.utils import use_log_level
from numpy.typing import NDArray
from pyriemann.estimation import Covariances
from pyriemann.tangentspace import TangentSpace
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ethos.neuro.errors import NeuroError
from ethos.neuro.features import BandPower, InputGuard
from ethos.neuro.mlp import TorchMLPClassifier


class QuietCSP(CSP):
    """MNE's CSP with its per-fit INFO logging (rank, covariance estimation) silenced."""

    def fit(self, X: Any, y: Any) -> QuietCSP:
        """Fit the spatial filters."""
        with use_log_level("WARNING"):
            super().fit(X, y)
        return self


@runtime_checkable
class Decoder(Protocol):
    """What the rest of ethos needs from a decoder (every scikit-learn classifier has it)."""

    classes_: NDArray[Any]

    def fit(self, X: Any, y: Any) -> Any:
        """Learn from epochs X (n, ch, t) and labels y."""
        ...

    def predict(self, X: Any) -> NDArray[Any]:
        """Labels for epochs X."""
        ...

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Class probabilities for epochs X, columns ordered as ``classes_``."""
        ...


def make_csp_lda(*, n_components: int = 4, reg: str | float | None = "ledoit_wolf") -> Pipeline:
    """CSP (log-variance of ``n_components`` spatial filters) + LDA."""
    return Pipeline(
        [
            ("guard", InputGuard()),
            ("csp", QuietCSP(n_components=n_components, reg=reg, log=True, norm_trace=False)),
            ("lda", LinearDiscriminantAnalysis()),
        ]
    )


def make_tangent_space(*, estimator: str = "oas", metric: str = "riemann", c: float = 1.0,
                       ) -> Pipeline:  # fmt: skip
    """Covariances (shrinkage ``estimator``) + tangent space + logistic regression."""
    return Pipeline(
        [
            ("guard", InputGuard()),
            ("cov", Covariances(estimator=estimator)),
            ("ts", TangentSpace(metric=metric)),
            ("logreg", LogisticRegression(C=c, max_iter=1000)),
        ]
    )


def make_bandpower_mlp(*, sfreq_hz: float = 250.0, hidden_units: int = 32, n_steps: int = 200,
                       seed: int = 0) -> Pipeline:  # fmt: skip
    """Log band power + standardisation + PyTorch MLP."""
    return Pipeline(
        [
            ("guard", InputGuard()),
            ("bandpower", BandPower(sfreq_hz=sfreq_hz)),
            ("scale", StandardScaler()),
            ("mlp", TorchMLPClassifier(hidden_units=hidden_units, n_steps=n_steps, seed=seed)),
        ]
    )


DECODERS: dict[str, Callable[..., Pipeline]] = {
    "csp_lda": make_csp_lda,
    "tangent_space": make_tangent_space,
    "bandpower_mlp": make_bandpower_mlp,
}
"""Registry of decoder factories by name; every entry passes the same contract test."""


def make_decoder(name: str, **params: Any) -> Pipeline:
    """Build a registered decoder; ``bandpower_mlp`` needs ``sfreq_hz`` of the data."""
    if name not in DECODERS:
        raise NeuroError(f"unknown decoder {name!r}", hint=f"choose one of {sorted(DECODERS)}")
    try:
        return DECODERS[name](**params)
    except TypeError as exc:
        raise NeuroError(f"decoder {name!r}: bad parameters {sorted(params)} ({exc})") from exc
