"""Serving variants (backend x precision) and what each costs in decisions, measured at start-up.

``ethos serve`` can run a run's model as it was trained (PyTorch, float32: the reference) or as a
faster variant: PyTorch with dynamically quantised int8 Linear layers, or ONNX Runtime in float32
or int8 (:mod:`ethos.models.onnx_backend`). A variant changes the numbers, and a decision near the
threshold can flip, so each one is compared with the float PyTorch model on the run's own test part
when the server starts. :class:`VariantReport` says how much it changed (agreement, accuracy in
points, the largest probability change) and how much faster it was, and
:func:`check_accuracy_drop` refuses a variant that loses more accuracy than the deployer allowed
(``--max-accuracy-drop``, 1 point by default), so a speed-up is never bought silently with worse
decisions. The people who read ``GET /v1/model`` and the model card see the same figures.

Dynamic quantisation (Jacob et al. 2018, "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference"; PyTorch's ``quantize_dynamic``) stores each Linear
weight as int8 with one scale per tensor and quantises activations on the fly, batch by batch.

PyTorch API choice (torch 2.13): ``torch.ao.quantization.quantize_dynamic`` still works and runs
on the fbgemm/x86 (or qnnpack on ARM) CPU kernels, but warns that eager-mode quantisation is
deprecated in favour of torchao's ``quantize_``. torchao targets GPU tensor subclasses, is not an
ethos dependency, and its CPU int8 path relies on ``torch.compile`` for speed; until it is, the
built-in call is the maintained CPU path for the torch version ethos pins, and its deprecation
warning is silenced here rather than repeated to every server log. It gained little on the 2-core
machine (1.03x); ONNX Runtime's int8 kernels are the faster choice there (docs/serving.md).
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import torch

from ethos.errors import EthosError, ModelError
from ethos.rundir import RunDir

log = logging.getLogger("ethos.serving")

PREFERRED_ENGINES = ("x86", "fbgemm", "qnnpack")
"""Quantised CPU kernels, best first: x86 (fbgemm with AVX-512 dispatch) on Intel/AMD, qnnpack on
ARM."""


Backend = Literal["torch", "onnx"]
Precision = Literal["float32", "int8"]
DEFAULT_MAX_ACCURACY_DROP = 1.0
"""Accuracy points on the test part a served variant may lose against the float model."""


class VariantRefused(EthosError):
    """A serving variant whose measured accuracy drop exceeds the deployer's limit."""


@dataclass(frozen=True)
class Variant:
    """How the model is served: ``backend`` and ``precision``; torch float32 is the reference."""

    backend: Backend = "torch"
    precision: Precision = "float32"

    @property
    def name(self) -> str:
        return f"{self.backend}-{self.precision}"

    @property
    def is_reference(self) -> bool:
        """The model as trained: nothing to compare it with."""
        return self.backend == "torch" and self.precision == "float32"


@dataclass(frozen=True)
class VariantReport:
    """What serving a variant did to the run's test decisions, or why that was not measured.

    Attributes:
        measured: whether the numbers below were measured (else ``reason`` says why not).
        linear_layers: layers whose weights became int8 (torch Linear modules, or ONNX MatMuls);
            0 for a float32 variant.
        engine: what ran the variant (torch's quantised kernel set, or ONNX Runtime and its
            threads).
        backend, precision: the variant (see :class:`Variant`).
        n: test rows compared (capped, see ``ServedModel.load``).
        accuracy_float, accuracy_served: share of test rows whose decision equals the label, with
            the served decision rule (per-group thresholds where the run has them), for the float
            PyTorch model and for the variant.
        accuracy_change: ``accuracy_served - accuracy_float`` (negative: the variant is worse).
        agreement: share of rows where the two decisions are identical.
        max_probability_change: largest |P_served - P_float| over rows and classes.
        seconds_float, seconds_served: wall time to score the ``n`` rows in batches of 64 (after
            one warm-up batch each).
        max_accuracy_drop: the limit in accuracy points the variant was checked against.
        accepted: whether it passed that check (None: not checked).
        export_sha256: sha256 of the ONNX file measured (None for PyTorch variants).
        reason: why nothing was measured, when ``measured`` is False.
    """

    measured: bool
    linear_layers: int
    engine: str
    backend: Backend = "torch"
    precision: Precision = "int8"
    n: int = 0
    accuracy_float: float | None = None
    accuracy_served: float | None = None
    accuracy_change: float | None = None
    agreement: float | None = None
    max_probability_change: float | None = None
    seconds_float: float | None = None
    seconds_served: float | None = None
    max_accuracy_drop: float | None = None
    accepted: bool | None = None
    export_sha256: str | None = None
    reason: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VariantReport:
        """A report from :meth:`to_json` (computed keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def variant(self) -> Variant:
        return Variant(self.backend, self.precision)

    @property
    def speedup(self) -> float | None:
        """seconds_float / seconds_served (above 1: the variant is faster)."""
        if not self.seconds_float or not self.seconds_served:
            return None
        return self.seconds_float / self.seconds_served

    @property
    def accuracy_drop_points(self) -> float | None:
        """Accuracy lost against the float model, in points (negative: it gained)."""
        if self.accuracy_change is None:
            return None
        return round(-100.0 * self.accuracy_change, 9) + 0.0  # rounded: n-row fractions; no -0

    @property
    def accuracy_int8(self) -> float | None:
        """``accuracy_served`` under the name of the int8-only report this one generalises."""
        return self.accuracy_served

    @property
    def seconds_int8(self) -> float | None:
        """``seconds_served`` under the name of the int8-only report this one generalises."""
        return self.seconds_served

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "variant": self.variant.name,
            "speedup": self.speedup,
            "accuracy_drop_points": self.accuracy_drop_points,
        }

    def __repr__(self) -> str:
        what = f"{self.variant.name} ({self.linear_layers} int8 layers, {self.engine})"
        if not self.measured:
            return f"<VariantReport {what}: not measured: {self.reason}>"
        return (
            f"<VariantReport {what} on {self.n} test rows: accuracy {self.accuracy_float:.4f} -> "
            f"{self.accuracy_served:.4f}, agreement {self.agreement:.4f}, "
            f"{self.speedup or float('nan'):.2f}x faster>"
        )


QuantizationReport = VariantReport
"""The name of the int8-only report, kept for its readers."""


def judge_accuracy_drop(report: VariantReport, max_drop_points: float) -> VariantReport:
    """``report`` with the limit and whether the variant kept within it (``accepted``). An
    unmeasured report stays unjudged (its ``reason`` says why; ``/v1/model`` shows it)."""
    if not report.measured:
        return replace(report, max_accuracy_drop=max_drop_points)
    drop = report.accuracy_drop_points or 0.0
    return replace(report, max_accuracy_drop=max_drop_points, accepted=drop <= max_drop_points)


def refusal(report: VariantReport) -> VariantRefused:
    """The error that refuses a variant judged to lose too much accuracy."""
    return VariantRefused(
        f"{report.variant.name} decides the run's {report.n} test rows "
        f"{report.accuracy_drop_points:.2f} accuracy points worse than the float model "
        f"({report.accuracy_float:.4f} -> {report.accuracy_served:.4f}, agreement "
        f"{report.agreement:.4f}); the limit is {report.max_accuracy_drop:g} points",
        hint="serve another variant (--backend torch --quantize none is the model as audited), "
        "or allow a larger drop with --max-accuracy-drop",
    )


def check_accuracy_drop(report: VariantReport, max_drop_points: float) -> VariantReport:
    """:func:`judge_accuracy_drop`, raising :class:`VariantRefused` for a variant over the
    limit."""
    judged = judge_accuracy_drop(report, max_drop_points)
    if judged.accepted is False:
        raise refusal(judged)
    return judged


def record_variant(
    run: RunDir, report: VariantReport, *, export: Mapping[str, Any] | None = None
) -> None:
    """Keep ``report`` in the run's ``serving_variants.json`` (one entry per variant, the newest
    measurement), for the model card. Entries about other weights are dropped; a run directory
    that cannot be written is logged, not fatal (the figures are still in ``/v1/model``)."""
    identity = run.identity()
    try:
        previous = run.serving_variants() or {}
    except EthosError:
        previous = {}  # damaged: replaced by this measurement
    kept = previous.get("variants")
    variants: dict[str, Any] = dict(kept) if isinstance(kept, dict) else {}
    if previous.get("weights_sha256") != identity["model_hash"]:
        variants = {}  # a measurement of other weights describes another model
    entry = {
        **report.to_json(),
        "export": None if export is None else dict(export),
        "measured_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    document = {
        "run_id": identity["run_id"],
        "weights_sha256": identity["model_hash"],
        "reference": "torch-float32: the model as trained, audited and gated",
        "variants": {**variants, report.variant.name: entry},
    }
    try:
        run.write_document(run.serving_variants_path, document)
    except OSError as exc:
        log.warning(
            "could not record the %s measurement in %s: %s", report.variant.name, run.path, exc
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


def measure_variant(
    score_float: Scorer,
    score_served: Scorer,
    labels: np.ndarray,
    *,
    variant: Variant,
    linear_layers: int,
    engine: str | None = None,
    warm_up: Callable[[], object] | None = None,
) -> VariantReport:
    """Compare the float and the served variant's decisions of the same rows with ``labels``.

    Each scorer is timed once, after ``warm_up`` (which should run both models on a few rows, so
    one-off costs such as first-call kernel selection fall outside the timing).
    """
    labels = np.asarray(labels)
    if len(labels) == 0:
        return not_measured(
            "the test part has no rows", linear_layers=linear_layers, variant=variant, engine=engine
        )
    if warm_up is not None:
        warm_up()
    started = time.perf_counter()
    decided_float, proba_float = score_float()
    seconds_float = time.perf_counter() - started
    started = time.perf_counter()
    decided_served, proba_served = score_served()
    seconds_served = time.perf_counter() - started
    accuracy_float = float(np.mean(decided_float == labels))
    accuracy_served = float(np.mean(decided_served == labels))
    return VariantReport(
        measured=True,
        linear_layers=linear_layers,
        engine=engine or _torch_engine(),
        backend=variant.backend,
        precision=variant.precision,
        n=len(labels),
        accuracy_float=accuracy_float,
        accuracy_served=accuracy_served,
        accuracy_change=accuracy_served - accuracy_float,
        agreement=float(np.mean(decided_float == decided_served)),
        max_probability_change=float(np.max(np.abs(proba_served - proba_float))),
        seconds_float=seconds_float,
        seconds_served=seconds_served,
    )


def measure_quantization(
    score_float: Scorer,
    score_int8: Scorer,
    labels: np.ndarray,
    *,
    linear_layers: int,
    warm_up: Callable[[], object] | None = None,
) -> VariantReport:
    """:func:`measure_variant` for PyTorch int8 (the call of the int8-only report)."""
    return measure_variant(
        score_float,
        score_int8,
        labels,
        variant=Variant("torch", "int8"),
        linear_layers=linear_layers,
        warm_up=warm_up,
    )


def not_measured(
    reason: str,
    *,
    linear_layers: int,
    variant: Variant | None = None,
    engine: str | None = None,
) -> VariantReport:
    """A report that says the variant is in use but its effect is unknown, and why."""
    variant = variant or Variant("torch", "int8")
    return VariantReport(
        measured=False,
        linear_layers=linear_layers,
        engine=engine or _torch_engine(),
        backend=variant.backend,
        precision=variant.precision,
        reason=reason,
    )


def _torch_engine() -> str:
    return f"torch {torch.__version__}, quantised engine {torch.backends.quantized.engine}"
