"""Dynamic int8 quantisation of a classifier's Linear layers, and what it costs in decisions.

Dynamic quantisation (Jacob et al. 2018, "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference"; PyTorch's ``quantize_dynamic``) stores each Linear
weight as int8 with one scale per tensor and quantises activations on the fly, batch by batch.
Transformer encoders spend most of their CPU time in Linear layers, so this is the one change that
speeds CPU serving without retraining. It also changes the numbers: a decision near the threshold
can flip. :class:`QuantizationReport` says how much, measured on the run's own test part, so the
people who read ``GET /v1/model`` can judge whether the speed was worth it.

API choice (torch 2.13): ``torch.ao.quantization.quantize_dynamic`` still works and runs on the
fbgemm/x86 (or qnnpack on ARM) CPU kernels, but warns that eager-mode quantisation is deprecated in
favour of torchao's ``quantize_``. torchao targets GPU tensor subclasses, is not an ethos
dependency, and its CPU int8 path relies on ``torch.compile`` for speed; until it is, the built-in
call is the maintained CPU path for the torch version ethos pins, and its deprecation warning is
silenced here rather than repeated to every server log.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ethos.errors import ModelError

PREFERRED_ENGINES = ("x86", "fbgemm", "qnnpack")
"""Quantised CPU kernels, best first: x86 (fbgemm with AVX-512 dispatch) on Intel/AMD, qnnpack on
ARM."""


@dataclass(frozen=True)
class QuantizationReport:
    """What int8 did to the run's test decisions, or why that was not measured.

    Attributes:
        measured: whether the numbers below were measured (else ``reason`` says why not).
        n: test rows compared (capped, see ``ServedModel.load``).
        accuracy_float, accuracy_int8: share of test rows whose decision equals the label, with
            the served decision rule (per-group thresholds where the run has them).
        accuracy_change: ``accuracy_int8 - accuracy_float`` (negative: int8 is worse).
        agreement: share of rows where the float and int8 decisions are identical.
        max_probability_change: largest |P_int8 - P_float| over rows and classes.
        seconds_float, seconds_int8: wall time to score the ``n`` rows (after one warm-up batch).
        linear_layers: Linear layers replaced by dynamically quantised ones.
        engine: the quantised kernel set (``torch.backends.quantized.engine``).
        reason: why nothing was measured, when ``measured`` is False.
    """

    measured: bool
    linear_layers: int
    engine: str
    n: int = 0
    accuracy_float: float | None = None
    accuracy_int8: float | None = None
    accuracy_change: float | None = None
    agreement: float | None = None
    max_probability_change: float | None = None
    seconds_float: float | None = None
    seconds_int8: float | None = None
    reason: str | None = None

    @property
    def speedup(self) -> float | None:
        """seconds_float / seconds_int8 (above 1: int8 is faster)."""
        if not self.seconds_float or not self.seconds_int8:
            return None
        return self.seconds_float / self.seconds_int8

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup}

    def __repr__(self) -> str:
        if not self.measured:
            return (
                f"<QuantizationReport int8 ({self.linear_layers} Linear layers, {self.engine}): "
                f"not measured: {self.reason}>"
            )
        return (
            f"<QuantizationReport int8 ({self.linear_layers} Linear layers, {self.engine}) on "
            f"{self.n} test rows: accuracy {self.accuracy_float:.4f} -> {self.accuracy_int8:.4f}, "
            f"agreement {self.agreement:.4f}, {self.speedup or float('nan'):.2f}x faster>"
        )


def quantized_engine() -> str:
    """Select a quantised CPU kernel set that this torch build has, and return its name.

    The engine is process-wide state; it is changed only when the current one is missing
    ("none" on some builds), so an engine chosen by the deployer stays.
    """
    supported = list(torch.backends.quantized.supported_engines)
    current = str(torch.backends.quantized.engine)
    if current in supported and current != "none":
        return current
    for name in PREFERRED_ENGINES:
        if name in supported:
            torch.backends.quantized.engine = name
            return name
    raise ModelError(
        "this torch build has no quantised CPU kernels (supported engines: "
        f"{', '.join(supported) or 'none'})",
        hint="serve without --quantize int8, or install a torch build with fbgemm or qnnpack",
    )


def quantize_int8(model: Any) -> Any:
    """A copy of ``model`` with every ``torch.nn.Linear`` dynamically quantised to int8.

    The input model is left as it is (float, with gradients), so a caller can keep it for what
    int8 cannot do: integrated-gradients explanations need gradients, which quantised Linear
    layers do not have. CPU only: the quantised kernels exist for CPU tensors.
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ModelError("int8 dynamic quantisation runs on CPU; the model is on another device")
    quantized_engine()
    float_copy = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # quantize_per_tensor's own deprecation
        try:
            from torch.ao.quantization import quantize_dynamic
        except ImportError:  # removed in a torch newer than the one ethos pins
            raise ModelError(
                f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic",
                hint="serve without --quantize int8 (or use the torch version ethos pins)",
            ) from None
        quantized = quantize_dynamic(float_copy, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    quantized.eval()
    if count_quantized_linear(quantized) == 0:
        raise ModelError(f"{type(model).__name__} has no Linear layers to quantise")
    return quantized


def count_quantized_linear(model: Any) -> int:
    """The number of dynamically quantised Linear modules in ``model``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    return sum(isinstance(m, DynamicLinear) for m in model.modules())


def count_float_linear(model: Any) -> int:
    """The number of plain ``torch.nn.Linear`` modules left in ``model``."""
    return sum(type(m) is torch.nn.Linear for m in model.modules())


Scorer = Callable[[], tuple[np.ndarray, np.ndarray]]
"""Scores the comparison rows: (decisions as class indices, probabilities rows x classes)."""


def measure_quantization(
    score_float: Scorer,
    score_int8: Scorer,
    labels: np.ndarray,
    *,
    linear_layers: int,
    warm_up: Callable[[], object] | None = None,
) -> QuantizationReport:
    """Compare the float and int8 decisions of the same rows against their ``labels``.

    Each scorer is timed once, after ``warm_up`` (which should run both models on a few rows, so
    one-off costs such as first-call kernel selection fall outside the timing).
    """
    labels = np.asarray(labels)
    if len(labels) == 0:
        return not_measured("the test part has no rows", linear_layers=linear_layers)
    if warm_up is not None:
        warm_up()
    started = time.perf_counter()
    decided_float, proba_float = score_float()
    seconds_float = time.perf_counter() - started
    started = time.perf_counter()
    decided_int8, proba_int8 = score_int8()
    seconds_int8 = time.perf_counter() - started
    accuracy_float = float(np.mean(decided_float == labels))
    accuracy_int8 = float(np.mean(decided_int8 == labels))
    return QuantizationReport(
        measured=True,
        linear_layers=linear_layers,
        engine=str(torch.backends.quantized.engine),
        n=len(labels),
        accuracy_float=accuracy_float,
        accuracy_int8=accuracy_int8,
        accuracy_change=accuracy_int8 - accuracy_float,
        agreement=float(np.mean(decided_float == decided_int8)),
        max_probability_change=float(np.max(np.abs(proba_int8 - proba_float))),
        seconds_float=seconds_float,
        seconds_int8=seconds_int8,
    )


def not_measured(reason: str, *, linear_layers: int) -> QuantizationReport:
    """A report that says int8 is in use but its effect is unknown, and why."""
    return QuantizationReport(
        measured=False,
        linear_layers=linear_layers,
        engine=str(torch.backends.quantized.engine),
        reason=reason,
    )
