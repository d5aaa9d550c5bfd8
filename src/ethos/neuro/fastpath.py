"""One window at a time: the fitted decoders' arithmetic without the pipeline's per-call overhead.

The closed loop classifies one window (22 channels x 1 s) every decoding hop. A scikit-learn
pipeline validates its input again at every step, and pyRiemann's generic tangent-space code
recomputes the reference whitening ``Cref^{-1/2}`` on every call; on one small window that
overhead is most of the time (2.7 ms for the tangent-space pipeline, of which the arithmetic is
well under a tenth). :func:`compile_window_decoder` reads the fitted parameters of a known
pipeline once and returns a function ``window (n_channels, n_times) -> class probabilities``
that does only the arithmetic:

* ``tangent_space``: the OAS-shrunk covariance (Chen et al. 2010, as ``sklearn.covariance.oas``
  computes it), whitened by the precomputed ``Cref^{-1/2}``, its matrix logarithm from one
  ``numpy.linalg.eigh``, the weighted upper triangle (pyRiemann's ``upper``), then the logistic
  regression's linear function and sigmoid/softmax;
* ``csp_lda``: ``log(mean((W x)²))`` over the first CSP filters ``W``, then LDA's linear function;
* ``bandpower_mlp``: a single-segment Welch periodogram (Hann window, constant detrend, density
  scaling, as ``scipy.signal.welch`` computes it) or scipy's Welch for longer windows, band means,
  log, standardisation, and the MLP's layers as matrix products.

These are written out by hand only because the libraries' per-call paths are what is slow;
``tests/neuro/test_fastpath.py`` pins every fast path to its pipeline's ``predict_proba`` to
within 1e-9. Any other pipeline gets its own ``predict_proba``, so the result is always right,
only sometimes slower. The input must already be valid (the streaming decoder checks shape and
finiteness of every block before it reaches a window).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from mne.decoding import CSP
from numpy.typing import NDArray
from pyriemann.estimation import Covariances
from pyriemann.tangentspace import TangentSpace
from scipy import signal
from scipy.special import expit, softmax
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from ethos.neuro.errors import NeuroError
from ethos.neuro.features import BandPower, InputGuard
from ethos.neuro.mlp import TorchMLPClassifier

WindowDecoder = Callable[[NDArray[np.float64]], NDArray[np.float64]]
"""One window (n_channels, n_times) in, class probabilities (n_classes,) out."""


def compile_window_decoder(decoder: Any) -> WindowDecoder:
    """A fast per-window function for a fitted decoder from :data:`~ethos.neuro.DECODERS`.

    Falls back to ``decoder.predict_proba(window[None])[0]`` for anything it does not recognise.
    The fitted parameters are read now: after refitting the decoder, compile it again. The
    window must be finite (the fast path checks only its channel count; the streaming decoder
    refuses non-finite blocks before they reach a window).
    """
    fast = _compile(decoder) if isinstance(decoder, Pipeline) else None
    if fast is not None:
        return fast

    def generic(window: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(decoder.predict_proba(window[None])[0], dtype=np.float64)

    return generic


def is_fast(window_decoder: WindowDecoder) -> bool:
    """True when ``window_decoder`` is a compiled fast path, not the generic fallback."""
    return getattr(window_decoder, "fast_path", None) is not None


def _compile(pipeline: Pipeline) -> WindowDecoder | None:
    steps = [step for _, step in pipeline.steps]
    if not steps or type(steps[0]) is not InputGuard:
        return None
    kinds = tuple(type(step) for step in steps[1:])
    inner: WindowDecoder | None = None
    if kinds == (Covariances, TangentSpace, LogisticRegression):
        inner = _tangent_space(*steps[1:])
    elif len(kinds) == 2 and issubclass(kinds[0], CSP) and kinds[1] is LinearDiscriminantAnalysis:
        inner = _csp_lda(*steps[1:])
    elif kinds == (BandPower, StandardScaler, TorchMLPClassifier):
        inner = _bandpower_mlp(*steps[1:])
    if inner is None:
        return None
    n_channels = steps[0].n_channels_
    fast = inner

    def decode(window: NDArray[np.float64]) -> NDArray[np.float64]:
        if window.shape[0] != n_channels:
            raise NeuroError(
                f"decoder was fitted on {n_channels} channels but got {window.shape[0]}",
                hint="pick the same channels, in the same order, as in training",
            )
        return fast(window)

    return _mark(decode, inner.fast_path)  # type: ignore[attr-defined]


def _linear_proba(coef: NDArray[np.float64], intercept: NDArray[np.float64]) -> WindowDecoder:
    """Probabilities of a fitted linear classifier, as LDA and LogisticRegression give them.

    Two classes: ``p1 = expit(w·x + b)``, ``[1 - p1, p1]``; more: ``softmax(W x + b)``.
    """
    w = np.array(coef, dtype=np.float64)
    b = np.array(intercept, dtype=np.float64)
    if w.shape[0] == 1:
        w0, b0 = w[0], float(b[0])

        def binary(features: NDArray[np.float64]) -> NDArray[np.float64]:
            p1 = float(expit(float(features @ w0) + b0))
            return np.array([1.0 - p1, p1])

        return binary

    def multiclass(features: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(softmax(w @ features + b), dtype=np.float64)

    return multiclass


def _mark(function: WindowDecoder, name: str) -> WindowDecoder:
    function.fast_path = name  # type: ignore[attr-defined]
    return function


def _tangent_space(cov: Covariances, ts: TangentSpace, logreg: LogisticRegression,
                   ) -> WindowDecoder | None:  # fmt: skip
    if cov.estimator != "oas" or cov.kwds or ts.metric != "riemann" or ts.tsupdate:
        return None
    reference = np.asarray(ts.reference_, dtype=np.float64)
    values, vectors = np.linalg.eigh(reference)
    whitening = (vectors / np.sqrt(values)) @ vectors.T  # Cref^{-1/2}, symmetric
    n = reference.shape[0]
    rows, cols = np.triu_indices(n)
    weights = np.where(rows == cols, 1.0, math.sqrt(2.0))
    head = _linear_proba(logreg.coef_, logreg.intercept_)

    def decode(window: NDArray[np.float64]) -> NDArray[np.float64]:
        x = window - window.mean(axis=1, keepdims=True)
        n_times = x.shape[1]
        emp = (x @ x.T) / n_times
        # sklearn.covariance.oas: shrinkage towards mu·I, mu = tr(S)/p (Chen et al. 2010).
        alpha = float(np.vdot(emp, emp)) / emp.size  # mean of the squared entries
        mu = float(emp.trace()) / n
        den = (n_times + 1) * (alpha - mu * mu / n)
        shrinkage = 1.0 if den == 0 else min((alpha + mu * mu) / den, 1.0)
        shrunk = (1.0 - shrinkage) * emp
        shrunk.flat[:: n + 1] += shrinkage * mu
        lam, vec = np.linalg.eigh(whitening @ shrunk @ whitening)
        log_map = (vec * np.log(lam)) @ vec.T
        return head(weights * log_map[rows, cols])

    return _mark(decode, "tangent_space")


def _csp_lda(csp: CSP, lda: LinearDiscriminantAnalysis) -> WindowDecoder | None:
    if csp.transform_into != "average_power" or csp.log is False or csp.dec_type != "single":
        return None
    filters = np.array(csp.filters_[: csp.n_components], dtype=np.float64)
    head = _linear_proba(lda.coef_, lda.intercept_)

    def decode(window: NDArray[np.float64]) -> NDArray[np.float64]:
        sources = filters @ window
        return head(np.log(np.mean(sources**2, axis=1)))

    return _mark(decode, "csp_lda")


def _bandpower_mlp(bandpower: BandPower, scaler: StandardScaler, mlp: TorchMLPClassifier,
                   ) -> WindowDecoder | None:  # fmt: skip
    layers: list[tuple[NDArray[np.float64], NDArray[np.float64], bool]] = []
    modules = list(mlp.network_)
    for i, module in enumerate(modules):
        if isinstance(module, nn.Linear):
            relu = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
            weight = module.weight.detach().numpy().astype(np.float64)
            bias = module.bias.detach().numpy().astype(np.float64)
            layers.append((weight, bias, relu))
        elif not isinstance(module, nn.ReLU | nn.Dropout):  # dropout is the identity in eval
            return None
    mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean else 0.0
    scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std else 1.0
    fs = float(bandpower.sfreq_hz)
    cache: dict[int, tuple[NDArray[np.float64], float, list[NDArray[np.bool_]]]] = {}

    def spectrum_setup(n_times: int) -> tuple[NDArray[np.float64], float, list[NDArray[np.bool_]]]:
        if n_times not in cache:
            window = signal.get_window("hann", n_times)
            freqs = np.fft.rfftfreq(n_times, 1.0 / fs)
            masks = [(freqs >= lo) & (freqs < hi) for lo, hi in bandpower.bands_hz]
            cache[n_times] = (window, 1.0 / (fs * float(np.sum(window**2))), masks)
        return cache[n_times]

    def decode(window: NDArray[np.float64]) -> NDArray[np.float64]:
        n_times = window.shape[1]
        if n_times > int(fs) or not all(m.any() for m in spectrum_setup(n_times)[2]):
            features = bandpower.transform(window[None])[0]  # several segments, or an error
        else:
            taper, density, masks = spectrum_setup(n_times)
            x = (window - window.mean(axis=1, keepdims=True)) * taper
            spectrum = np.fft.rfft(x, axis=1)
            psd = (spectrum.real**2 + spectrum.imag**2) * density
            last = -1 if n_times % 2 == 0 else None  # the Nyquist bin is not doubled
            psd[:, 1:last] *= 2.0
            power = np.stack([psd[:, m].mean(axis=1) for m in masks], axis=-1)
            features = np.log(power + 1e-30).ravel()
        # The network sees float32 features, as PyTorch does; the layers then run in float64.
        h = ((features - mean) / scale).astype(np.float32).astype(np.float64)
        for weight, bias, relu in layers:
            h = weight @ h + bias
            if relu:
                h = np.maximum(h, 0.0)
        return np.asarray(softmax(h), dtype=np.float64)

    return _mark(decode, "bandpower_mlp")
