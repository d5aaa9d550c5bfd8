"""The model side of ``ethos serve``: a finished run, loaded once, answering one batch at a time.

:class:`ServedModel` is the run model (:class:`ethos.models.inference.RunModel`, the same one
``ethos predict`` and the audit use, so the same input gets the same answer in a file, in the
audit and over HTTP) plus what serving alone needs: locks between threads, an int8 copy and its
measurement, and the answer shapes of the API. It never imports ``ethos.training``: a run is the
hand-off, and a server must not depend on the code that trained it.

Concurrency. :meth:`ServedModel.predict` is meant to be called from one worker thread (the
micro-batcher's). :meth:`ServedModel.explain` may run in another thread; captum hooks the input
embedding layer while it attributes, which would leak into a concurrent forward pass on the same
module, so predictions and explanations of one module take turns under a lock. Under int8 the
two use different modules (see below) and do not wait for each other.

Int8. ``quantize="int8"`` serves a dynamically quantised copy (:mod:`ethos.serving.quantize`) and
keeps the float model for explanations only: integrated gradients need gradients and quantised
Linear layers have none. Explanations therefore attribute the float model's probabilities, which
may differ slightly from the served int8 ones; ``info()["explanations"]`` says so. The float copy
costs one more copy of the weights in memory (about 90 MB for the default model).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ethos.config import DataConfig
from ethos.data.records import format_value
from ethos.errors import DataError, EthosError, ModelError
from ethos.models.group_thresholds import POOLED, GroupThresholds
from ethos.models.inference import RunModel, checked_texts
from ethos.rundir import RunDir
from ethos.serving.quantize import (
    QuantizationReport,
    count_quantized_linear,
    measure_quantization,
    not_measured,
    quantize_int8,
)

Quantize = Literal["none", "int8"]
MEASURE_ROWS = 1000
"""Test rows the int8 report compares at most: enough for a decision-agreement estimate within
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


class ServedModel:
    """A finished classification run, ready to serve. Build it with :meth:`load`."""

    def __init__(
        self,
        *,
        scorer: RunModel,
        model: Any,
        quantization: QuantizationReport | None,
    ) -> None:
        self.scorer = scorer
        self.run = scorer.run
        self.config = scorer.config
        assert scorer.data is not None
        self.data: DataConfig = scorer.data
        self.model = model
        self.float_model = scorer.model
        self.tokenizer = scorer.tokenizer
        self.label_names: tuple[str, ...] = scorer.label_names
        self.record_fields: tuple[str, ...] = scorer.record_fields
        self.quantization = quantization
        self.merged_lora = scorer.merged_lora
        manifest = scorer.run.manifest
        self.model_id: str = str(manifest["run_id"])
        self._manifest = manifest
        self._vocab: frozenset[str] | None = None
        self._predict_lock = threading.Lock()
        self._explain_lock = self._predict_lock if model is self.float_model else threading.Lock()

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def load(
        cls, run: RunDir | str | Path, *, quantize: Quantize = "none", measure: bool = True
    ) -> ServedModel:
        """Load a finished classification run for serving.

        ``quantize="int8"`` serves dynamically quantised Linear layers; with ``measure`` the float
        and int8 decisions on the run's test part (up to :data:`MEASURE_ROWS` rows) are compared
        at load and kept in :attr:`quantization` (data that cannot be loaded is reported as not
        measured, with the reason, and does not stop serving). A LoRA run's adapter is merged into
        its base model: one matrix product per layer instead of two, and plain Linear layers to
        quantise.
        """
        if quantize not in ("none", "int8"):
            raise ModelError(f"unknown quantization {quantize!r}", hint="use 'none' or 'int8'")
        run = run if isinstance(run, RunDir) else RunDir.open(run)
        if run.config.task != "classification":
            raise ModelError(
                f"{run.path} is an {run.config.task} run; ethos serve serves classification runs"
            )
        scorer = RunModel.from_dir(run, merge_lora=True)
        served = cls(
            scorer=scorer,
            model=quantize_int8(scorer.model) if quantize == "int8" else scorer.model,
            quantization=None,
        )
        if served.quantized:
            layers = count_quantized_linear(served.model)
            served.quantization = (
                served._measure_int8(layers)
                if measure
                else not_measured("measurement was switched off", linear_layers=layers)
            )
        return served

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
        return self.model is not self.float_model

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
            "precision": "int8 (dynamic, Linear layers)" if self.quantized else "float32",
            "quantization": None if self.quantization is None else self.quantization.to_json(),
            "explanations": {
                "method": "layer integrated gradients on the input embeddings (captum)",
                "model": _explained_model(self.quantized),
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
            f"{list(self.label_names)}, {'int8' if self.quantized else 'float32'}, {rule}>"
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
        embeddings = self._forward(self.model, texts, pairs, embed=True)[1]
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
        return self._forward(self.model, texts, pairs, embed=False)[0]

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
            model=_explained_model(self.quantized),
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
        probabilities, embeddings = self._forward(self.model, texts, pairs, embed=embed)
        return self._decide(probabilities, groups, keys), embeddings

    def _forward(
        self, model: Any, texts: Sequence[str], pairs: Sequence[str] | None, *, embed: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        lock = self._explain_lock if model is self.float_model else self._predict_lock
        with lock:
            return self._forward_locked(model, texts, pairs, embed=embed)

    def _forward_locked(
        self, model: Any, texts: Sequence[str], pairs: Sequence[str] | None, *, embed: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One padded forward pass of ``model`` (the served or the float one) over the batch."""
        return self.scorer.forward(texts, pairs, embed=embed, model=model)

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

    def _measure_int8(self, layers: int) -> QuantizationReport:
        """The int8 report on the run's test part, or why it could not be measured."""
        try:
            test = self.run.dataset("test")  # refused if the data changed since training
        except EthosError as exc:
            return not_measured(
                f"the run's test part cannot be used here: {exc.message}", linear_layers=layers
            )
        n = min(len(test), MEASURE_ROWS)
        texts = test.texts[:n]
        pairs = None if test.text_pairs is None else test.text_pairs[:n]
        keys = [str(k) for k in test.ids[:n]]
        groups: list[str | None] | None = None
        attribute = self.thresholds_attribute
        if attribute is not None and attribute in test.groups.columns:
            groups = [str(g) for g in test.groups[attribute].iloc[:n]]

        def score(model: Any) -> tuple[np.ndarray, np.ndarray]:
            decided: list[int] = []
            chunks: list[np.ndarray] = []
            for start in range(0, n, MEASURE_BATCH):
                end = min(start + MEASURE_BATCH, n)
                probabilities = self._forward(
                    model,
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
            for model in (self.float_model, self.model):
                self._forward(model, texts[:8], None if pairs is None else pairs[:8], embed=False)

        try:
            return measure_quantization(
                lambda: score(self.float_model),
                lambda: score(self.model),
                test.labels[:n],
                linear_layers=layers,
                warm_up=warm_up,
            )
        except EthosError as exc:
            return not_measured(
                f"scoring the test part failed: {exc.message}", linear_layers=layers
            )


# --- helpers -------------------------------------------------------------------------------------


def _explained_model(quantized: bool) -> str:
    if quantized:
        return (
            "float32 copy of the served int8 model (integrated gradients need gradients, which "
            "quantised Linear layers lack); its probabilities can differ slightly from the served "
            "ones"
        )
    return "float32 (the served model)"
