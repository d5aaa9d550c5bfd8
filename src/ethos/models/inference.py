"""The one run model: a finished run loaded once, scoring as the run itself scored.

Before this there were three load-and-predict paths (``ethos predict``, the audit's context and
serving), each with its own copy of "records to text", tokenising and the forward pass, and one of
them reloaded the run's data without checking its fingerprint. :class:`RunModel` is the only way a
run's model is used after training:

* ``ethos predict`` (:mod:`ethos.models.predict_file`), the audit
  (:mod:`ethos.audit.run_context`) and serving (:mod:`ethos.serving.model`) load it with
  :meth:`RunModel.from_dir`, for plain, LoRA and extractive-QA runs;
* records become text with the run's field order, display names and value names, sensitive
  columns left out unless the run put them in (``data.include_sensitive_in_text``);
* texts are tokenised and padded by :mod:`ethos.models.encoding` exactly as training evaluated
  them (truncated to ``model.max_length``, never refused for length; pairs truncate the second
  text), so a run's stored predictions are reproduced (a test holds it to that);
* a run with per-group thresholds decides a row with them when its group is given, the random
  draw keyed on the row's key, so the same key always gets the same decision.

Serving's concerns (locks between threads, the int8 copy, measuring it) stay in serving; it
passes its quantised module as ``model=`` where it wants that one used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ethos.config import DataConfig, RunConfig
from ethos.data.build import resolve_data_config
from ethos.data.records import format_value, records_to_text
from ethos.errors import DataError, ModelError
from ethos.models.encoding import Encoded, collate, encode, iterate, sequential_order
from ethos.models.group_thresholds import POOLED, GroupThresholds, run_thresholds
from ethos.rundir import RunDir

if TYPE_CHECKING:
    from ethos.data.squad import QADataset
    from ethos.models.attribution import TokenAttribution

_SCALARS = (str, int, float, bool, np.generic)


@torch.no_grad()
def class_probabilities(
    model: torch.nn.Module, data: Encoded, *, batch_size: int, pad_id: int
) -> np.ndarray:
    """Softmax probabilities for every example, in the data's own order (float64, (n, K)).

    Batches are sorted by length so that padding stays small; the order of the rows in the
    result is the order of ``data``.
    """
    model.eval()
    device = next(model.parameters()).device
    n_labels = int(model.config.num_labels)  # type: ignore[union-attr,arg-type]
    out = np.zeros((len(data), n_labels), dtype=np.float64)
    for indices, batch in iterate(data, sequential_order(data.lengths(), batch_size), pad_id):
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits.float()
        out[indices] = torch.softmax(logits, dim=-1).cpu().numpy()
    return out


@dataclass(frozen=True)
class Decisions:
    """Class indices decided for each row, and the threshold rule that decided it (None: argmax;
    a group name, or :data:`~ethos.models.group_thresholds.POOLED` for a rare or unseen group)."""

    indices: np.ndarray
    rules: list[str | None]


class RunModel:
    """A finished run's model, tokenizer, labels, input rule and decision rule.

    Build it with :meth:`from_dir`. ``model`` is the float module in eval mode (a LoRA run's
    adapter merged into its base when ``merge_lora``); ``data`` is the run's resolved data config
    (None for a question-answering run, which reads SQuAD files).
    """

    def __init__(
        self,
        *,
        run: RunDir,
        config: RunConfig,
        data: DataConfig | None,
        model: Any,
        tokenizer: Any,
        label_names: Sequence[str],
        record_fields: Sequence[str],
        thresholds: GroupThresholds | None,
        adapter: bool,
        merged_lora: bool,
    ) -> None:
        self.run = run
        self.config = config
        self.data = data
        self.model = model
        self.tokenizer = tokenizer
        self.label_names: tuple[str, ...] = tuple(label_names)
        self.record_fields: tuple[str, ...] = tuple(record_fields)
        self.thresholds = thresholds
        self.adapter = adapter
        self.merged_lora = merged_lora

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def from_dir(cls, run: RunDir | str, *, merge_lora: bool = False) -> RunModel:
        """Load a finished run (plain, LoRA or extractive QA) from its directory."""
        from ethos.models.lora import is_adapter_dir

        run = run if isinstance(run, RunDir) else RunDir.open(run)
        config = run.config
        if config.task == "multiple_choice":  # its head scores options, not classes
            raise ModelError(
                f"{run.path} is a multiple_choice run; predicting and serving load "
                "classification and extractive QA runs",
                hint="its held-out answers are in predictions.parquet; `ethos audit` scores them",
            )
        adapter = is_adapter_dir(run.model_dir)
        if config.task == "extractive_qa":
            model, tokenizer = _load_qa(run, config, adapter)
            merged = False
            if adapter and merge_lora:
                from ethos.models.lora import merge_lora as merge

                model, merged = merge(model), True
            return cls(
                run=run,
                config=config,
                data=None,
                model=model,
                tokenizer=tokenizer,
                label_names=(),
                record_fields=(),
                thresholds=None,
                adapter=adapter,
                merged_lora=merged,
            )
        from ethos.models.classifier import load_classifier_from_dir

        data = resolve_data_config(config.data)
        model, tokenizer = load_classifier_from_dir(run.model_dir, base_model=config.model.name)
        merged = False
        if adapter and merge_lora:
            from ethos.models.lora import merge_lora as merge

            model, merged = merge(model), True
        model.eval()
        label_names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
        thresholds = run_thresholds(
            run.model_dir,
            config.train.fairness,
            data.sensitive,
            len(label_names),
            run_path=run.path,
        )
        return cls(
            run=run,
            config=config,
            data=data,
            model=model,
            tokenizer=tokenizer,
            label_names=label_names,
            record_fields=record_fields(data, run.manifest),
            thresholds=thresholds,
            adapter=adapter,
            merged_lora=merged,
        )

    # --- what the run is -----------------------------------------------------------------------

    @property
    def task(self) -> str:
        return str(self.config.task)

    @property
    def max_length(self) -> int:
        return int(self.config.model.max_length)

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)

    @property
    def batch_size(self) -> int:
        """The run's evaluation batch size (how training scored its held-out rows)."""
        return int(self.config.train.eval_batch_size)

    @property
    def sensitive(self) -> tuple[str, ...]:
        return tuple(self.data.sensitive) if self.data is not None else ()

    @property
    def text_pairs(self) -> bool:
        """Whether the model reads text pairs (``data.text_pair_field``)."""
        return bool(self.data and self.data.text_field and self.data.text_pair_field)

    @property
    def thresholds_attribute(self) -> str | None:
        """The attribute whose group a per-group-thresholds run needs per row, else None."""
        return None if self.thresholds is None else self.thresholds.attribute

    @property
    def embedding_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def __repr__(self) -> str:
        rule = (
            "argmax"
            if self.thresholds is None
            else f"group thresholds on {self.thresholds.attribute}"
        )
        kind = "LoRA (merged)" if self.merged_lora else ("LoRA" if self.adapter else "full")
        labels = f", labels {list(self.label_names)}, {rule}" if self.label_names else ""
        return f"<RunModel {self.run.path.name}: {self.task}, {kind}{labels}>"

    # --- inputs --------------------------------------------------------------------------------

    def texts_from_frame(self, frame: pd.DataFrame) -> tuple[list[str], list[str] | None]:
        """(texts, second texts or None) from a table holding the run's input columns.

        Missing text cells become the empty text and missing record values "unknown", as in
        training; a missing column is a :class:`DataError` naming every one.
        """
        data = self._classification_data()
        missing = [c for c in self.record_fields if c not in frame.columns]
        if missing:
            raise DataError(
                f"the input lacks the column(s) {', '.join(missing)} the model was trained on",
                hint=f"provide: {', '.join(self.record_fields)}",
            )
        if data.text_field:
            texts = [_as_text(v) for v in frame[data.text_field]]
            pairs = (
                [_as_text(v) for v in frame[data.text_pair_field]] if data.text_pair_field else None
            )
            return texts, pairs
        texts = records_to_text(
            frame,
            list(self.record_fields),
            field_names=data.field_names,
            value_names=data.value_names,
        )
        return texts, None

    def texts_from_records(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[list[str], list[str] | None]:
        """(texts, second texts or None) from records (column -> value), as training built them.

        Extra keys are ignored (a record may carry its group, an id, sensitive columns the model
        does not read). A missing field is a :class:`DataError` naming it and the record; an
        explicit null is a missing *value*.
        """
        columns: dict[str, list[Any]] = {field: [] for field in self.record_fields}
        for number, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise DataError(
                    f"record {number} is a {type(record).__name__}, not an object of fields",
                    hint=f"send {{{', '.join(repr(f) + ': ...' for f in self.record_fields)}}}",
                )
            missing = [f for f in self.record_fields if f not in record]
            if missing:
                raise DataError(
                    f"record {number} lacks the field(s) {', '.join(map(repr, missing))} the "
                    "model was trained on",
                    hint=f"give every record: {', '.join(self.record_fields)} "
                    "(null for an unknown value)",
                )
            for field in self.record_fields:
                value = record[field]
                if value is not None and value is not pd.NA and not isinstance(value, _SCALARS):
                    raise DataError(
                        f"record {number}: field '{field}' is a {type(value).__name__}; "
                        "fields hold one value (text, number, true/false or null)"
                    )
                columns[field].append(value)
        frame = pd.DataFrame(columns, columns=list(self.record_fields), dtype=object)
        return self.texts_from_frame(frame)

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Encoded:
        """Token ids as training built them (truncated, unpadded)."""
        texts = checked_texts(texts)
        if self.text_pairs and pairs is None:
            raise DataError("this run reads text pairs; give the second text of every input")
        if pairs is not None:
            pairs = checked_texts(pairs)
            if len(pairs) != len(texts):
                raise DataError(f"{len(pairs)} second texts for {len(texts)} texts")
        return encode(
            self.tokenizer,
            texts,
            pairs,
            np.zeros(len(texts), dtype=np.int64),
            max_length=self.max_length,
        )

    # --- outputs -------------------------------------------------------------------------------

    def predict_proba(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        *,
        batch_size: int | None = None,
        model: Any = None,
    ) -> np.ndarray:
        """Class probabilities, (n, K) float64, batched by length as training evaluated.

        ``model`` scores with another module of the same run (serving's int8 copy).
        """
        if len(texts) == 0:
            return np.zeros((0, len(self.label_names)))
        return class_probabilities(
            self.model if model is None else model,
            self.encode(texts, pairs),
            batch_size=batch_size or self.batch_size,
            pad_id=self.pad_id,
        )

    @torch.inference_mode()
    def forward(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        *,
        embed: bool = False,
        model: Any = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One padded forward pass over ``texts`` (a serving batch): probabilities (n, K)
        float64 and, with ``embed``, the mean of the last hidden states over real tokens
        (float32, (n, hidden))."""
        module = self.model if model is None else model
        if len(texts) == 0:
            pooled = np.zeros((0, self.embedding_dim), dtype=np.float32) if embed else None
            return np.zeros((0, len(self.label_names))), pooled
        encoded = self.encode(texts, pairs)
        batch = collate(encoded, np.arange(len(encoded)), self.pad_id)
        device = next(self.model.parameters()).device  # an int8 copy runs on the CPU
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        out = module(**inputs, output_hidden_states=embed)
        probabilities = torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
        pooled = None
        if embed:
            last = out.hidden_states[-1]
            mask = inputs["attention_mask"].unsqueeze(-1).to(last.dtype)
            summed = (last * mask).sum(dim=1)
            pooled = (summed / mask.sum(dim=1).clamp(min=1.0)).float().cpu().numpy()
        return probabilities.astype(np.float64), pooled

    def embed(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Mean of the last hidden states over real (unmasked) tokens: float32, (n, hidden)."""
        pooled = self.forward(texts, pairs, embed=True)[1]
        assert pooled is not None
        return pooled

    def decide(
        self,
        probabilities: np.ndarray,
        groups: Sequence[str | None] | None = None,
        keys: Sequence[str | None] | None = None,
    ) -> Decisions:
        """The run's decision rule: argmax, or per-group thresholds for rows whose group is
        given, the random draw keyed on ``keys[i]`` (the same key always gets the same
        decision). A group with no rule of its own takes the pooled rule if the run has one,
        else it is a :class:`DataError`."""
        decided = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, dtype=int)
        rules: list[str | None] = [None] * len(probabilities)
        thresholds = self.thresholds
        if thresholds is None or groups is None:
            return Decisions(decided, rules)
        if len(groups) != len(probabilities):
            raise DataError(f"{len(groups)} groups for {len(probabilities)} rows")
        rows = [i for i, g in enumerate(groups) if g is not None]
        if rows:
            if keys is None:
                raise DataError(
                    "per-group thresholds decide at random, keyed on each row's key; give keys"
                )
            row_rules = self.threshold_rules([str(groups[i]) for i in rows])
            decided[rows] = thresholds.decide(
                probabilities[rows, 1], row_rules, [keys[i] for i in rows]
            )
            for i, rule in zip(rows, row_rules, strict=True):
                rules[i] = rule
        return Decisions(decided, rules)

    def threshold_rules(self, groups: Sequence[str]) -> list[str]:
        """Each group as the thresholds know it: itself, or the pooled rule where it has none."""
        thresholds = self.thresholds
        if thresholds is None:
            raise DataError("this run decides by argmax; it has no per-group thresholds")
        known = set(thresholds.groups) | set(thresholds.pooled)
        out: list[str] = []
        for raw in groups:
            group = format_value(raw)
            if group in known:
                out.append(group)
            elif POOLED in thresholds.groups:
                out.append(POOLED)  # the rule fitted for rare groups; better than refusing
            else:
                shown = ", ".join(repr(g) for g in sorted(thresholds.groups))
                raise DataError(
                    f"group {group!r} of '{thresholds.attribute}' has no decision threshold in "
                    f"this run (known groups: {shown}) and the run has no pooled rule for "
                    "unseen groups",
                    hint=f"send one of {shown}, or leave the group out to decide by argmax",
                )
        return out

    def label_index(self, label: str) -> int:
        try:
            return self.label_names.index(str(label))
        except ValueError:
            raise DataError(
                f"unknown label {label!r}", hint=f"use one of {list(self.label_names)}"
            ) from None

    def explain(
        self,
        text: str,
        pair: str | None = None,
        *,
        target: int | None = None,
        steps: int = 20,
        max_steps: int | None = None,
        model: Any = None,
    ) -> TokenAttribution:
        """Integrated-gradients attributions of ``text``'s tokens to P(``target``) (default: the
        predicted class), refined up to ``max_steps`` until completeness holds to 5 %."""
        from ethos.models.attribution import token_attributions

        if self.text_pairs and pair is None:
            raise DataError("this run reads text pairs; give the second text as pair=")
        if pair is not None and not self.text_pairs:
            raise DataError("this run reads one text; pair= is only for text-pair runs")
        with torch.enable_grad():
            return token_attributions(
                self.model if model is None else model,
                self.tokenizer,
                checked_texts([text]),
                target="predicted" if target is None else target,
                pairs=None if pair is None else checked_texts([pair]),
                n_steps=steps,
                max_length=self.max_length,
                max_steps=max(steps, max_steps if max_steps is not None else 4 * steps),
                batch_size=1,
            )[0]

    def answer(self, part: QADataset) -> list[str]:
        """The answer text for every question of ``part`` (an extractive-QA run)."""
        from ethos.models.qa import answer_questions, qa_features

        if self.task != "extractive_qa":
            raise ModelError(f"{self.run.path} is a {self.task} run; it answers no questions")
        features = qa_features(self.tokenizer, part, self.config, train=False)
        return answer_questions(self.model, part, features, self.config, pad_id=self.pad_id)

    def _classification_data(self) -> DataConfig:
        if self.data is None:
            raise ModelError(
                f"{self.run.path} is a {self.task} run; it reads SQuAD files, not records"
            )
        return self.data


def _load_qa(run: RunDir, config: RunConfig, adapter: bool) -> tuple[Any, Any]:
    from transformers import AutoTokenizer

    from ethos.models.lora import load_adapter
    from ethos.models.qa import load_qa_model

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(run.model_dir))
        if adapter:
            model = load_adapter(load_qa_model(config.model.name), run.model_dir)
        else:
            model = load_qa_model(str(run.model_dir))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"the question-answering model in {run.model_dir} cannot be loaded: {exc}",
            hint="the run directory may be incomplete; train again",
        ) from None
    model.eval()
    return model, tokenizer


def record_fields(data: DataConfig, manifest: Mapping[str, Any]) -> list[str]:
    """The columns the model reads, in training order.

    Text runs read ``text_field`` (and ``text_pair_field``). Record runs read what training
    serialised: the manifest's ``data.text_fields`` when present (the record of what was actually
    done), else the config's rule: ``record_fields`` without the sensitive columns, or with all of
    them appended when ``include_sensitive_in_text`` is set.
    """
    if data.text_field:
        return [data.text_field] + ([data.text_pair_field] if data.text_pair_field else [])
    recorded = (manifest.get("data") or {}).get("text_fields")
    if isinstance(recorded, list) and recorded and all(isinstance(f, str) for f in recorded):
        return list(recorded)
    fields = list(data.record_fields or [])
    if not fields:
        raise ModelError("the run's config names no data.record_fields or data.text_field")
    if data.include_sensitive_in_text:
        return fields + [s for s in data.sensitive if s not in fields]
    return [f for f in fields if f not in data.sensitive]


def checked_texts(texts: Sequence[Any]) -> list[str]:
    """``texts`` as a list, refusing anything that is not a string (with its position)."""
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise DataError(f"input {i} is a {type(text).__name__}, not a text")
    return out


def _as_text(value: Any) -> str:
    """A text-field value as training read it: missing becomes the empty text."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)
