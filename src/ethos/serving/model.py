"""The model side of ``ethos serve``: a finished run, loaded once, answering one batch at a time.

:class:`ServedModel` is the run model (:class:`ethos.models.inference.RunModel`, the same one
``ethos predict`` and the audit use, so the same input gets the same answer in a file, in the
audit and over HTTP) plus what serving alone needs: locks between threads, the served variant and
its measurement, and the answer shapes of the API. It never imports ``ethos.training``: a run is
the hand-off, and a server must not depend on the code that trained it.

Variants (:mod:`ethos.serving.quantize`). The model is served as trained (``backend="torch"``,
float32) or as a faster variant: a dynamically quantised int8 PyTorch copy, or the run's graph on
ONNX Runtime in float32 or int8 (:class:`ethos.models.onnx_backend.OnnxRunModel`, exported once
and cached in the run). Every variant scores through the run model's own encoding, gives the
probabilities and the drift monitor's embeddings from one forward pass, and is compared with the
float model on the run's test part at load: a variant that loses more than ``max_accuracy_drop``
accuracy points is refused (:class:`ethos.serving.quantize.VariantRefused`).

Concurrency. :meth:`ServedModel.predict` is meant to be called from one worker thread (the
micro-batcher's). :meth:`ServedModel.explain` may run in another thread; captum hooks the input
embedding layer while it attributes, which would leak into a concurrent forward pass on the same
module, so predictions and explanations of one module take turns under a lock. Under another
variant the two use different engines (see below) and do not wait for each other.

Explanations always run on the float PyTorch model: integrated gradients need gradients, which
quantised Linear layers and ONNX Runtime sessions do not give. They therefore attribute the float
model's probabilities, which may differ slightly from the served ones;
``info()["explanations"]`` says so. The float model costs one more copy of the weights in memory
(about 90 MB for the default model) beside the variant.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from ethos.config import DataConfig
from ethos.data.records import format_value
from ethos.errors import DataError, EthosError, ModelError
from ethos.models.group_thresholds import POOLED, GroupThresholds
from ethos.models.inference import RunModel, checked_texts
from ethos.rundir import RunDir
from ethos.serving.quantize import (
    DEFAULT_MAX_ACCURACY_DROP,
    Backend,
    Variant,
    VariantReport,
    count_quantized_linear,
    judge_accuracy_drop,
    measure_variant,
    not_measured,
    quantize_int8,
    record_variant,
    refusal,
)
from ethos.serving.settings import ServeSettings

if TYPE_CHECKING:
    from ethos.serving.generator import ServedGenerator

Quantize = Literal["none", "int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx")
MEASURE_ROWS = 1000
"""Test rows a variant's report compares at most: enough for a decision-agreement estimate within
about 3 points (binomial standard error at n=1000), cheap enough to run at every start."""
MEASURE_BATCH = 64
MAX_EXPLAIN_STEPS = 1024
_SCALARS = (str, int, float, bool, np.generic)


@dataclass(frozen=True)
class Prediction:
    """One decision and the probabilities behind it.

    ``label_index`` indexes ``ServedModel.label_names``. ``thresholds_applied`` is True when the
    run's per-group thresholds decided (the group was given); ``threshold_group`` then names the
    rule that decided: the group itself, or the pooled rule (``ethos.models.group_thresholds.
    POOLED``) for a rare or unseen group.
    """

    label: str
    label_index: int
    probabilities: dict[str, float]
    thresholds_applied: bool
    threshold_group: str | None = None


@dataclass(frozen=True)
class Explanation:
    """Integrated-gradients token attributions to P(target) for one input.

    ``label`` is the class the explained model's probabilities favour (argmax); with per-group
    thresholds the served decision can differ, as the group is not part of the text.
    ``completeness_delta`` is sum(attributions) - (probability - baseline_probability), signed:
    the integration error (Sundararajan et al. 2017's completeness axiom says it is 0), and
    ``relative_gap`` its size relative to |probability - baseline_probability|.
    """

    label: str
    target: str
    tokens: list[str]
    attributions: list[float]
    special: list[bool]
    probability: float
    baseline_probability: float
    completeness_delta: float
    relative_gap: float
    n_steps: int
    model: str

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "target": self.target,
            "tokens": list(self.tokens),
            "attributions": list(self.attributions),
            "special": list(self.special),
            "probability": self.probability,
            "baseline_probability": self.baseline_probability,
            "completeness_delta": self.completeness_delta,
            "relative_gap": self.relative_gap,
            "n_steps": self.n_steps,
            "model": self.model,
        }


class Engine(Protocol):
    """What scores a batch: :meth:`RunModel.forward`'s signature and meaning."""

    def forward(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, *, embed: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]: ...


class TorchEngine:
    """The run model's forward pass on one PyTorch module (the float model or its int8 copy)."""

    def __init__(self, scorer: RunModel, module: Any) -> None:
        self.scorer = scorer
        self.module = module

    def forward(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, *, embed: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return self.scorer.forward(texts, pairs, embed=embed, model=self.module)


class ServedModel:
    """A finished classification run, ready to serve. Build it with :meth:`load`."""

    def __init__(
        self,
        *,
        scorer: RunModel,
        model: Any,
        quantization: VariantReport | None,
        engine: Engine | None = None,
        variant: Variant | None = None,
    ) -> None:
        self.scorer = scorer
        self.run = scorer.run
        self.config = scorer.config
        assert scorer.data is not None
        self.data: DataConfig = scorer.data
        self.model = model
        """What serves: the float or int8 PyTorch module, or the ONNX Runtime model."""
        self.float_model = scorer.model
        self.engine: Engine = engine if engine is not None else TorchEngine(scorer, model)
        self.float_engine = TorchEngine(scorer, scorer.model)
        if variant is None:
            variant = Variant("torch", "float32" if model is scorer.model else "int8")
        self.variant = variant
        self.tokenizer = scorer.tokenizer
        self.label_names: tuple[str, ...] = scorer.label_names
        self.record_fields: tuple[str, ...] = scorer.record_fields
        self.quantization = quantization
        """How the served variant compared with the float model (None when it is that model)."""
        self.merged_lora = scorer.merged_lora
        manifest = scorer.run.manifest
        self.model_id: str = str(manifest["run_id"])
        self._manifest = manifest
        self._vocab: frozenset[str] | None = None
        self._predict_lock = threading.Lock()
        self._explain_lock = self._predict_lock if variant.is_reference else threading.Lock()

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        run: RunDir | str | Path,
        *,
        quantize: Quantize = "none",
        backend: Backend = "torch",
        measure: bool = True,
        max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
        threads: int | None = None,
        record: bool = False,
        measured: VariantReport | None = None,
    ) -> ServedModel:
        """Load a finished classification run for serving, as ``backend`` at ``quantize``.

        Any variant but PyTorch float32 is compared with the float model on the run's test part
        (up to :data:`MEASURE_ROWS` rows) when ``measure`` is set, kept in :attr:`quantization`,
        and refused (:class:`~ethos.serving.quantize.VariantRefused`) if it loses more than
        ``max_accuracy_drop`` accuracy points. Data that cannot be loaded is reported as not
        measured, with the reason, and does not stop serving. ``record`` keeps the measurement
        in the run's ``serving_variants.json`` for the model card; ``measured`` is a report
        made by another process for the same variant (and the same ONNX file), shown instead of
        measuring again. ``threads`` sets ONNX Runtime's intra-op threads (default: every usable
        core). A LoRA run's adapter is merged into its base model: one matrix product per layer
        instead of two, plain Linear layers to quantise, and a plain graph to export.
        """
        if quantize not in ("none", "int8"):
            raise ModelError(f"unknown quantization {quantize!r}", hint="use 'none' or 'int8'")
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}", hint="use 'torch' or 'onnx'")
        run = run if isinstance(run, RunDir) else RunDir.open(run)
        if run.config.task != "classification":
            raise ModelError(
                f"{run.path} is a {run.config.task} run; ethos serve serves classification runs"
            )
        scorer = RunModel.from_dir(run, merge_lora=True)
        variant = Variant(backend, "int8" if quantize == "int8" else "float32")
        served = cls._for_variant(scorer, variant, threads)
        if variant.is_reference:
            return served
        report = served._report(measure, measured)
        report = judge_accuracy_drop(report, max_accuracy_drop)
        served.quantization = report
        if record and measured is None:
            record_variant(run, report, export=served.export_info())
        if report.accepted is False:
            raise refusal(report)
        return served

    @classmethod
    def _for_variant(cls, scorer: RunModel, variant: Variant, threads: int | None) -> ServedModel:
        if variant.backend == "onnx":
            from ethos.models.onnx_backend import OnnxRunModel

            onnx = OnnxRunModel.load(scorer, variant.precision, threads=threads)
            return cls(scorer=scorer, model=onnx, quantization=None, engine=onnx, variant=variant)
        model = quantize_int8(scorer.model) if variant.precision == "int8" else scorer.model
        return cls(scorer=scorer, model=model, quantization=None, variant=variant)

    def _report(self, measure: bool, measured: VariantReport | None) -> VariantReport:
        """The measurement given by another process if it is of this very variant, else a new
        one (or a note that measuring was switched off)."""
        layers, engine, sha256 = self._variant_details()
        if (
            measured is not None
            and measured.variant == self.variant
            and measured.export_sha256 == sha256
        ):
            return measured
        if not measure:
            return replace(
                not_measured(
                    "measurement was switched off",
                    linear_layers=layers,
                    variant=self.variant,
                    engine=engine,
                ),
                export_sha256=sha256,
            )
        return replace(self._measure_variant(layers, engine), export_sha256=sha256)

    def _variant_details(self) -> tuple[int, str | None, str | None]:
        """(int8 layers, engine description, ONNX file sha256) of the served variant."""
        from ethos.models.onnx_backend import OnnxRunModel

        if isinstance(self.model, OnnxRunModel):
            info = self.model.describe()
            engine = (
                f"onnxruntime {info['onnxruntime']} (CPU, {info['intra_op_threads']} intra-op "
                "threads)"
            )
            return self.model.quantized_matmuls, engine, self.model.file.sha256
        layers = count_quantized_linear(self.model) if self.quantized else 0
        return layers, None, None

    def export_info(self) -> dict[str, Any] | None:
        """The served ONNX graph (sha256, opset, quantisation, threads), or None under torch."""
        from ethos.models.onnx_backend import OnnxRunModel

        return self.model.describe() if isinstance(self.model, OnnxRunModel) else None

    # --- what the server reads -----------------------------------------------------------------

    @property
    def thresholds(self) -> GroupThresholds | None:
        """The run's per-group thresholds (the run model's decision rule), or None."""
        return self.scorer.thresholds

    @property
    def max_length(self) -> int:
        return int(self.config.model.max_length)

    @property
    def sensitive(self) -> tuple[str, ...]:
        """The run's sensitive attributes (audit groups; in the text only if the run said so)."""
        return tuple(self.data.sensitive)

    @property
    def thresholds_attribute(self) -> str | None:
        """The attribute whose group a per-group-thresholds run needs per row, else None."""
        return None if self.thresholds is None else self.thresholds.attribute

    @property
    def quantized(self) -> bool:
        return self.variant.precision == "int8"

    @property
    def backend(self) -> Backend:
        return self.variant.backend

    @property
    def text_pairs(self) -> bool:
        """Whether the model reads text pairs (``data.text_pair_field``)."""
        return bool(self.data.text_field and self.data.text_pair_field)

    @property
    def tokenizer_vocab(self) -> frozenset[str]:
        """The tokenizer's vocabulary strings (drift monitoring counts words outside it)."""
        if self._vocab is None:
            self._vocab = frozenset(self.tokenizer.get_vocab())
        return self._vocab

    @property
    def parameters(self) -> int:
        """Weights of the float model (quantised modules hide theirs from ``parameters()``)."""
        return int(sum(p.numel() for p in self.float_model.parameters()))

    @property
    def embedding_dim(self) -> int:
        return int(self.float_model.config.hidden_size)

    def info(self) -> dict[str, Any]:
        """What ``GET /v1/model`` shows about the model: JSON-able, no file paths."""
        manifest = self._manifest
        thresholds = self.thresholds
        return {
            "model_id": self.model_id,
            "task": self.config.task,
            "created_utc": manifest.get("created_utc"),
            "base_model": self.config.model.name,
            "format": manifest.get("model", {}).get("format", "full"),
            "lora_merged": self.merged_lora,
            "parameters": self.parameters,
            "labels": list(self.label_names),
            "max_length": self.max_length,
            "embedding_dim": self.embedding_dim,
            "input": {
                "kind": "text_pair"
                if self.text_pairs
                else ("text" if self.data.text_field else "record"),
                "fields": list(self.record_fields),
                "sensitive_in_text": sorted(set(self.record_fields) & set(self.sensitive)),
            },
            "sensitive": list(self.sensitive),
            "data_fingerprint": manifest.get("data", {}).get("fingerprint"),
            "decision_rule": "argmax" if thresholds is None else "group_thresholds",
            "thresholds": None
            if thresholds is None
            else {
                "attribute": thresholds.attribute,
                "constraint": thresholds.constraint,
                "groups": sorted(thresholds.groups),
                "pooled": list(thresholds.pooled),
                "unknown_groups": "pooled rule" if POOLED in thresholds.groups else "refused",
                "without_group": "argmax (thresholds_applied: false)",
            },
            "backend": self.variant.backend,
            "precision": _precision(self.variant),
            "variant_check": None if self.quantization is None else self.quantization.to_json(),
            "quantization": None
            if self.quantization is None or not self.quantized
            else self.quantization.to_json(),
            "export": self.export_info(),
            "explanations": {
                "method": "layer integrated gradients on the input embeddings (captum)",
                "model": _explained_model(self.variant),
            },
        }

    def __repr__(self) -> str:
        rule = (
            "argmax"
            if self.thresholds is None
            else f"group thresholds on {self.thresholds.attribute} ({self.thresholds.constraint})"
        )
        return (
            f"<ServedModel {self.model_id}: {self.config.model.name}, labels "
            f"{list(self.label_names)}, {self.variant.name}, {rule}>"
        )

    # --- inputs --------------------------------------------------------------------------------

    def texts_from_records(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Records (column -> value) to model text, exactly as training serialised them.

        Extra keys are ignored (a record may carry the group, an id, sensitive columns the
        model does not read). A missing field is a :class:`DataError` naming it and the record;
        an explicit null is a missing *value* and becomes "unknown", as an empty cell did in
        training. Text-pair runs read two texts: use :meth:`pairs_from_records`.
        """
        if self.text_pairs:
            raise DataError(
                "this run reads text pairs; texts_from_records gives one text per record",
                hint="use pairs_from_records",
            )
        return self.pairs_from_records(records)[0]

    def pairs_from_records(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[list[str], list[str] | None]:
        """(texts, second texts or None) from records, as training built them."""
        return self.scorer.texts_from_records(records)

    def groups_from_records(self, records: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """Each record's group for the thresholds attribute (None where absent or no thresholds)."""
        attribute = self.thresholds_attribute
        out: list[str | None] = []
        for record in records:
            value = record.get(attribute) if attribute is not None else None
            out.append(None if value is None else format_value(value))
        return out

    def check_groups(self, groups: Sequence[str | None]) -> None:
        """Raise :class:`DataError` for a group the thresholds cannot decide.

        Call it per request before batching: inside :meth:`predict` the error would fail the
        whole batch, other callers' rows included.
        """
        if self.thresholds is None:
            return
        self.scorer.threshold_rules([g for g in groups if g is not None])

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text before truncation, special tokens included (input-length drift)."""
        if not texts:
            return []
        encoded = self.tokenizer(
            checked_texts(texts), add_special_tokens=True, truncation=False, verbose=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    # --- predictions ---------------------------------------------------------------------------

    def predict(
        self,
        texts: Sequence[str],
        *,
        pairs: Sequence[str] | None = None,
        groups: Sequence[str | None] | None = None,
        keys: Sequence[str] | None = None,
    ) -> list[Prediction]:
        """Decide ``texts`` in one padded forward pass (the caller batches).

        With per-group thresholds, a row whose group is given is decided by its group's rule, the
        random draw keyed on ``keys[i]`` (give the prediction id, and the same id always gets the
        same decision); a row without a group is decided by argmax and says so
        (``thresholds_applied`` False). A group with no rule of its own takes the pooled rule if
        the run has one, else it is a :class:`DataError`.
        """
        return self._predict(texts, pairs, groups, keys, embed=False)[0]

    def embed(self, texts: Sequence[str], *, pairs: Sequence[str] | None = None) -> np.ndarray:
        """Mean of the last hidden states over real (unmasked) tokens: float32, (n, hidden)."""
        embeddings = self._forward(self.engine, texts, pairs, embed=True)[1]
        assert embeddings is not None
        return embeddings

    def predict_and_embed(
        self,
        texts: Sequence[str],
        *,
        pairs: Sequence[str] | None = None,
        groups: Sequence[str | None] | None = None,
        keys: Sequence[str] | None = None,
    ) -> tuple[list[Prediction], np.ndarray]:
        """:meth:`predict` and :meth:`embed` from one forward pass."""
        predictions, embeddings = self._predict(texts, pairs, groups, keys, embed=True)
        assert embeddings is not None
        return predictions, embeddings

    def probabilities(
        self, texts: Sequence[str], *, pairs: Sequence[str] | None = None
    ) -> np.ndarray:
        """Softmax probabilities (n, classes), float64, from the served model."""
        return self._forward(self.engine, texts, pairs, embed=False)[0]

    # --- explanations --------------------------------------------------------------------------

    def explain(
        self,
        text: str,
        *,
        pair: str | None = None,
        target: str | None = None,
        steps: int = 20,
        max_steps: int | None = None,
    ) -> Explanation:
        """Integrated-gradients attributions of ``text``'s tokens to P(``target``).

        ``target`` defaults to the predicted (argmax) label. ``steps`` is where the integral
        starts; an attribution whose completeness gap exceeds 5 % is recomputed with doubled
        steps up to ``max_steps`` (default 4 x ``steps``). Always on the float model (see the
        module docstring for int8).
        """
        if not 1 <= steps <= MAX_EXPLAIN_STEPS:
            raise DataError(f"steps must be between 1 and {MAX_EXPLAIN_STEPS}, got {steps}")
        ceiling = min(max(max_steps if max_steps is not None else 4 * steps, steps), 4096)
        if self.text_pairs and pair is None:
            raise DataError("this run reads text pairs; give the second text as pair=")
        if pair is not None and not self.text_pairs:
            raise DataError("this run reads one text; pair= is only for text-pair runs")
        index = None if target is None else self.scorer.label_index(target)
        with self._explain_lock:
            probabilities = self.scorer.forward(
                [text], None if pair is None else [pair], model=self.float_model
            )[0][0]
            result = self.scorer.explain(
                text, pair, target=index, steps=steps, max_steps=ceiling, model=self.float_model
            )
        return Explanation(
            label=self.label_names[int(np.argmax(probabilities))],
            target=self.label_names[result.target],
            tokens=list(result.tokens),
            attributions=list(result.attributions),
            special=list(result.special),
            probability=result.output,
            baseline_probability=result.baseline_output,
            completeness_delta=result.total - result.delta,
            relative_gap=result.relative_gap,
            n_steps=result.n_steps,
            model=_explained_model(self.variant),
        )

    # --- internals -----------------------------------------------------------------------------

    def _predict(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None,
        groups: Sequence[str | None] | None,
        keys: Sequence[str] | None,
        *,
        embed: bool,
    ) -> tuple[list[Prediction], np.ndarray | None]:
        n = len(texts)
        for name, values in (("groups", groups), ("keys", keys), ("pairs", pairs)):
            if values is not None and len(values) != n:
                raise DataError(f"{len(values)} {name} for {n} texts; give one per text")
        if groups is not None and self.thresholds is not None:
            self.check_groups(groups)  # before the forward pass: fail fast and cheaply
        probabilities, embeddings = self._forward(self.engine, texts, pairs, embed=embed)
        return self._decide(probabilities, groups, keys), embeddings

    def _forward(
        self, engine: Engine, texts: Sequence[str], pairs: Sequence[str] | None, *, embed: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One padded forward pass of ``engine`` (the served or the float one) over the batch."""
        lock = self._explain_lock if engine is self.float_engine else self._predict_lock
        with lock:
            return engine.forward(texts, pairs, embed=embed)

    def _decide(
        self,
        probabilities: np.ndarray,
        groups: Sequence[str | None] | None,
        keys: Sequence[str] | None,
    ) -> list[Prediction]:
        decided = self.scorer.decide(probabilities, groups, keys)
        thresholds = self.thresholds
        return [
            Prediction(
                label=self.label_names[int(k)],
                label_index=int(k),
                probabilities={
                    name: float(p) for name, p in zip(self.label_names, row, strict=True)
                },
                thresholds_applied=rule is not None,
                threshold_group=None
                if rule is None or thresholds is None
                else (POOLED if rule in thresholds.pooled else rule),
            )
            for k, row, rule in zip(decided.indices, probabilities, decided.rules, strict=True)
        ]

    def _measure_variant(self, layers: int, engine: str | None) -> VariantReport:
        """The variant's report on the run's test part, or why it could not be measured."""
        try:
            test = self.run.dataset("test")  # refused if the data changed since training
        except EthosError as exc:
            return not_measured(
                f"the run's test part cannot be used here: {exc.message}",
                linear_layers=layers,
                variant=self.variant,
                engine=engine,
            )
        n = min(len(test), MEASURE_ROWS)
        texts = test.texts[:n]
        pairs = None if test.text_pairs is None else test.text_pairs[:n]
        keys = [str(k) for k in test.ids[:n]]
        groups: list[str | None] | None = None
        attribute = self.thresholds_attribute
        if attribute is not None and attribute in test.groups.columns:
            groups = [str(g) for g in test.groups[attribute].iloc[:n]]

        def score(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
            decided: list[int] = []
            chunks: list[np.ndarray] = []
            for start in range(0, n, MEASURE_BATCH):
                end = min(start + MEASURE_BATCH, n)
                probabilities = self._forward(
                    engine,
                    texts[start:end],
                    None if pairs is None else pairs[start:end],
                    embed=False,
                )[0]
                part = self._decide(
                    probabilities,
                    None if groups is None else groups[start:end],
                    keys[start:end],
                )
                decided.extend(p.label_index for p in part)
                chunks.append(probabilities)
            return np.asarray(decided), np.concatenate(chunks) if chunks else np.zeros((0, 2))

        def warm_up() -> None:
            for engine in (self.float_engine, self.engine):
                self._forward(engine, texts[:8], None if pairs is None else pairs[:8], embed=False)

        try:
            return measure_variant(
                lambda: score(self.float_engine),
                lambda: score(self.engine),
                test.labels[:n],
                variant=self.variant,
                linear_layers=layers,
                engine=engine,
                warm_up=warm_up,
            )
        except EthosError as exc:
            return not_measured(
                f"scoring the test part failed: {exc.message}",
                linear_layers=layers,
                variant=self.variant,
                engine=engine,
            )


def load_served_model(
    settings: ServeSettings, run: RunDir | None = None
) -> ServedModel | ServedGenerator:
    """The model as ``ethos serve`` was asked to serve it: the variant checked against the
    accuracy limit and its measurement recorded in the run (unless another process of the same
    server measured it and passed the report on in ``settings.variant_check``). A ``causal_lm``
    run is served as a :class:`~ethos.serving.generator.ServedGenerator` (``POST /v1/generate``)
    instead; every other task as a classifier (``POST /v1/predict``)."""
    from ethos.models.onnx_backend import default_threads

    opened = run if run is not None else RunDir.open(settings.run_dir)
    if opened.config.task == "causal_lm":
        from ethos.serving.generator import ServedGenerator

        return ServedGenerator.load(opened, backend=settings.backend, quantize=settings.quantize)
    measured = settings.variant_check
    return ServedModel.load(
        opened,
        quantize=settings.quantize,
        backend=settings.backend,
        measure=settings.measure_quantization,
        max_accuracy_drop=settings.max_accuracy_drop,
        threads=settings.onnx_threads or default_threads(settings.workers),
        record=True,
        measured=None if measured is None else VariantReport.from_json(measured),
    )


# --- helpers -------------------------------------------------------------------------------------


def _precision(variant: Variant) -> str:
    if variant.precision == "float32":
        return "float32"
    if variant.backend == "onnx":
        return "int8 (ONNX Runtime dynamic quantisation, per-channel MatMul weights)"
    return "int8 (dynamic, Linear layers)"


def _explained_model(variant: Variant) -> str:
    if variant.is_reference:
        return "float32 (the served model)"
    return (
        f"float32 copy of the served {variant.name} model, in PyTorch (integrated gradients "
        "need gradients, which quantised layers and ONNX Runtime lack); its probabilities can "
        "differ slightly from the served ones"
    )
