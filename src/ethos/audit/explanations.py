"""Explanations: token attributions by layer integrated gradients, with a completeness check.

Method. Integrated gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
Networks") on the output of the model's input-embedding layer, computed by captum's
``LayerIntegratedGradients``. For an input x, a baseline x' and an output F, the attribution of
token position i is

    a_i = sum_d (e_id - e'_id) * integral_0^1 dF(e' + t (e - e')) / de_id dt

where e, e' are the word embeddings of x and x' (d runs over the embedding dimensions), and the
integral is a Gauss-Legendre quadrature with ``n_steps`` points. The baseline keeps the special
tokens ([CLS], [SEP]) and replaces every other token by [PAD], with the same attention mask and
token types; position and token-type embeddings are therefore equal in x and x', and the special
tokens get exactly zero attribution.

Output. F is the softmax *probability* of the target class (by default the class the model
predicts for x), so attributions are in probability units: a token with attribution 0.1 moved
P(target) up by 0.1 on the path from the baseline.

Completeness (the axiom of the same paper): sum_i a_i = F(x) - F(x'). The *gap* of an example is
|sum_i a_i - (F(x) - F(x'))| and its *relative gap* that gap divided by |F(x) - F(x')| (floored at
:data:`MIN_DELTA`). An example whose relative gap exceeds the tolerance is attributed again with
twice the steps, up to ``max_steps``; the steps used and the final gap are reported per example.

Identity terms. Word pieces are merged back into words (``##`` continuations; hyphenated
compounds such as "african-american" are matched whole as well), and a word is an identity term
when it is in :func:`ethos.text.lexicons.identity_terms`. The *identity share* of an example is
sum |a| over identity-term words / sum |a| over all words, in [0, 1]; the check averages it per
group of every sensitive attribute, which says how much of what drives the decision is *who* the
text is about. For records rendered as text ("race: African-American; sex: Male") the share on
the sensitive fields themselves (name and value) is reported as well.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ethos.audit.errors import AuditError
from ethos.audit.validation import MISSING_GROUP

if TYPE_CHECKING:
    import torch

    from ethos.audit.protocol import AuditContext

METHOD = "layer_integrated_gradients"
MIN_DELTA = 1e-4
"""Floor of |F(x) - F(x')| in relative gaps: below it (in probability) the difference is rounding
noise of a float32 forward pass, and dividing by it would inflate the gap without meaning."""
FIELD_SEPARATOR = "; "
"""How records are joined into one text (``ethos.data.records.records_to_text``'s default)."""
Target = int | Sequence[int] | Literal["predicted"]


@dataclass(frozen=True)
class TokenAttribution:
    """The attribution of one input's tokens to F = P(target class), in probability units.

    Attributes:
        tokens: the word pieces the model saw, special tokens included, after truncation.
        attributions: one per token (exactly 0 for special tokens, which the baseline keeps).
        special: True where the token is a special token ([CLS], [SEP]).
        target: the class whose probability was attributed.
        output: F(x), the target probability on the input.
        baseline_output: F(x'), the target probability on the all-[PAD] baseline.
        n_steps: the integration steps used (after any escalation).
        offsets: the (start, end) characters of each token in its text (fast tokenizers only).
        sequence_ids: 0 or 1 for a token of the first or second text, None for special tokens.
    """

    tokens: list[str]
    attributions: list[float]
    special: list[bool]
    target: int
    output: float
    baseline_output: float
    n_steps: int
    offsets: list[tuple[int, int]] | None = None
    sequence_ids: list[int | None] | None = None

    @property
    def total(self) -> float:
        """Sum of the attributions (equal to F(x) - F(x') up to the gap)."""
        return math.fsum(self.attributions)

    @property
    def delta(self) -> float:
        """F(x) - F(x'), what the attributions should add up to."""
        return self.output - self.baseline_output

    @property
    def gap(self) -> float:
        """|sum of attributions - (F(x) - F(x'))|, in probability."""
        return abs(self.total - self.delta)

    @property
    def relative_gap(self) -> float:
        """The gap relative to |F(x) - F(x')| (floored at :data:`MIN_DELTA`)."""
        return self.gap / max(abs(self.delta), MIN_DELTA)

    def words(self) -> list[tuple[str, float]]:
        """(word, summed attribution) with word pieces merged and special tokens left out."""
        merged: list[tuple[str, float]] = []
        for token, value, is_special in zip(
            self.tokens, self.attributions, self.special, strict=True
        ):
            if is_special:
                continue
            if token.startswith("##") and merged:
                word, total = merged[-1]
                merged[-1] = (word + token[2:], total + value)
            else:
                merged.append((token, value))
        return merged

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able summary the serving API returns for one input."""
        return {
            "tokens": list(self.tokens),
            "attributions": list(self.attributions),
            "target": self.target,
            "output": self.output,
            "baseline_output": self.baseline_output,
            "gap": self.gap,
            "relative_gap": self.relative_gap,
            "n_steps": self.n_steps,
        }

    def __repr__(self) -> str:
        return (
            f"<TokenAttribution {len(self.tokens)} tokens, target {self.target}: "
            f"P(x)={self.output:.4f}, P(baseline)={self.baseline_output:.4f}, "
            f"sum={self.total:.4f}, relative gap {self.relative_gap:.2e} at {self.n_steps} steps>"
        )


def input_embeddings(model: Any) -> torch.nn.Module:
    """The model's token-embedding layer (plain Transformers models and peft wrappers alike)."""
    import torch

    getter = getattr(model, "get_input_embeddings", None)
    layer = getter() if callable(getter) else None
    if not isinstance(layer, torch.nn.Module):
        raise AuditError(
            f"cannot find the input-embedding layer of {type(model).__name__}",
            hint="explanations need a Transformers model (get_input_embeddings())",
        )
    return layer


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    import torch

    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for k, row in enumerate(rows):
        out[k, : len(row)] = torch.tensor(list(row), dtype=torch.long)
    return out


def token_attributions(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    target: Target = "predicted",
    pairs: Sequence[str] | None = None,
    n_steps: int = 32,
    max_length: int = 128,
    tolerance: float = 0.05,
    max_steps: int = 256,
    batch_size: int = 8,
    internal_batch_size: int | None = 128,
) -> list[TokenAttribution]:
    """Integrated-gradients attributions of each text's tokens to P(target class).

    ``target`` is ``"predicted"`` (each text's arg-max class), one class index for all texts, or
    one per text. Texts (and second texts ``pairs``) are tokenised as in training, truncated to
    ``max_length``. An example whose completeness gap relative to |F(x) - F(x')| exceeds
    ``tolerance`` is attributed again with twice the steps until ``max_steps``; the result
    carries the steps used, so a caller can see that the tolerance was not reached.
    """
    texts = list(texts)
    if not texts:
        raise AuditError("empty input: there are no texts to explain")
    if pairs is not None and len(pairs) != len(texts):
        raise AuditError(f"length mismatch: {len(texts)} texts but {len(pairs)} second texts")
    if n_steps < 1 or max_steps < n_steps:
        raise AuditError(f"need 1 <= n_steps <= max_steps, got {n_steps} and {max_steps}")
    if not tolerance > 0:
        raise AuditError(f"tolerance must be positive, got {tolerance}")
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        raise AuditError(
            "the tokenizer has no padding token to build the attribution baseline from",
            hint="set tokenizer.pad_token before explaining",
        )
    layer = input_embeddings(model)
    fast = bool(getattr(tokenizer, "is_fast", False))
    encoded = tokenizer(
        texts,
        list(pairs) if pairs is not None else None,
        truncation="only_second" if pairs is not None else True,
        max_length=max_length,
        padding=False,
        return_special_tokens_mask=True,
        return_offsets_mapping=fast,
    )
    n_labels = int(getattr(getattr(model, "config", None), "num_labels", 0) or 0)
    targets = _targets(target, len(texts), n_labels)

    import torch
    from captum.attr import LayerIntegratedGradients

    def probabilities(
        input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return torch.softmax(model(**kwargs).logits.float(), dim=-1)

    explainer = LayerIntegratedGradients(probabilities, layer)
    device = next(model.parameters()).device
    was_training = bool(getattr(model, "training", False))
    model.eval()
    results: list[TokenAttribution | None] = [None] * len(texts)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    try:
        for start in range(0, len(order), batch_size):
            rows = [int(i) for i in order[start : start + batch_size]]
            ids = _pad([encoded["input_ids"][i] for i in rows], int(pad_id)).to(device)
            mask = _pad([[1] * len(encoded["input_ids"][i]) for i in rows], 0).to(device)
            special = _pad([encoded["special_tokens_mask"][i] for i in rows], 1).to(device)
            types = (
                _pad([encoded["token_type_ids"][i] for i in rows], 0).to(device)
                if encoded.get("token_type_ids") is not None
                else None
            )
            baseline = torch.where(special.bool(), ids, torch.full_like(ids, int(pad_id)))
            with torch.no_grad():
                p_input = probabilities(ids, mask, types)
                p_base = probabilities(baseline, mask, types)
            chosen = torch.tensor(
                [
                    int(p_input[k].argmax()) if targets is None else targets[i]
                    for k, i in enumerate(rows)
                ],
                dtype=torch.long,
                device=device,
            )
            index = torch.arange(len(rows), device=device)
            out = p_input[index, chosen].double().cpu().numpy()
            base = p_base[index, chosen].double().cpu().numpy()
            pending = list(range(len(rows)))
            steps = n_steps
            while pending:
                sel = torch.tensor(pending, dtype=torch.long, device=device)
                attributions = explainer.attribute(
                    inputs=ids[sel],
                    baselines=baseline[sel],
                    target=chosen[sel],
                    additional_forward_args=(mask[sel], None if types is None else types[sel]),
                    n_steps=steps,
                    internal_batch_size=internal_batch_size,
                )
                per_token = (attributions.sum(dim=-1) * mask[sel]).double().detach().cpu().numpy()
                still: list[int] = []
                for j, k in enumerate(pending):
                    i = rows[k]
                    width = len(encoded["input_ids"][i])
                    result = TokenAttribution(
                        tokens=list(tokenizer.convert_ids_to_tokens(encoded["input_ids"][i])),
                        attributions=[float(v) for v in per_token[j, :width]],
                        special=[bool(v) for v in encoded["special_tokens_mask"][i]],
                        target=int(chosen[k]),
                        output=float(out[k]),
                        baseline_output=float(base[k]),
                        n_steps=steps,
                        offsets=[tuple(o) for o in encoded["offset_mapping"][i]] if fast else None,
                        sequence_ids=list(encoded.sequence_ids(i)) if fast else None,
                    )
                    results[i] = result
                    if result.relative_gap > tolerance and steps < max_steps:
                        still.append(k)
                pending = still
                steps = min(2 * steps, max_steps)
    finally:
        model.train(was_training)
    return [r for r in results if r is not None]


def _targets(target: Target, n: int, n_labels: int) -> list[int] | None:
    if isinstance(target, str):
        if target != "predicted":
            raise AuditError(f"target must be 'predicted' or class indices, got {target!r}")
        return None
    chosen = (
        [int(target)] * n if isinstance(target, (int, np.integer)) else [int(t) for t in target]
    )
    if len(chosen) != n:
        raise AuditError(f"length mismatch: {n} texts but {len(chosen)} targets")
    bad = [t for t in chosen if not 0 <= t < (n_labels or t + 1)]
    if bad:
        raise AuditError(f"target classes {sorted(set(bad))} are outside 0..{n_labels - 1}")
    return chosen


# --------------------------------------------------------------------------------------------
# Identity terms and sensitive fields.


def identity_mask(words: Sequence[str], terms: frozenset[str] | None = None) -> list[bool]:
    """True for each word that is an identity term, or part of a hyphenated one ("asian-american").

    The tokenizer splits "african-american" into "african", "-", "american"; runs joined by "-"
    are looked up whole, and every piece of a matching run counts.
    """
    if terms is None:
        from ethos.text.lexicons import identity_terms

        terms = identity_terms()
    lowered = [w.lower() for w in words]
    mask = [w in terms for w in lowered]
    i = 0
    while i < len(lowered):
        end = i
        while end + 2 < len(lowered) and lowered[end + 1] == "-":
            end += 2
        if end > i and "".join(lowered[i : end + 1]) in terms:
            mask[i : end + 1] = [True] * (end + 1 - i)
        i = end + 1 if end > i else i + 1
    return mask


def identity_share(
    words: Sequence[str], attributions: Sequence[float], *, terms: frozenset[str] | None = None
) -> float:
    """sum |a| over identity-term words / sum |a| over all words; NaN if every a is 0."""
    weights = np.abs(np.asarray(attributions, dtype=float))
    total = float(weights.sum())
    if total == 0.0:
        return math.nan
    return float(weights[np.asarray(identity_mask(words, terms), dtype=bool)].sum()) / total


def field_spans(text: str, fields: Sequence[str]) -> dict[str, tuple[int, int]] | None:
    """Character span of each ``"name: value"`` field in a record rendered as text, or None.

    None when the text does not split into exactly one piece per field (a value containing the
    separator, or a text that was not rendered from records).
    """
    pieces = text.split(FIELD_SEPARATOR)
    if len(pieces) != len(fields):
        return None
    spans: dict[str, tuple[int, int]] = {}
    start = 0
    for field, piece in zip(fields, pieces, strict=True):
        spans[field] = (start, start + len(piece))
        start += len(piece) + len(FIELD_SEPARATOR)
    return spans


def span_share(result: TokenAttribution, span: tuple[int, int]) -> tuple[float, bool]:
    """(sum |a| on first-text tokens inside ``span`` / sum |a|, whether any token is inside).

    A field cut off by truncation has share 0 and is not visible.
    """
    if result.offsets is None or result.sequence_ids is None:
        raise AuditError("field shares need a fast tokenizer (character offsets)")
    weights = np.abs(np.asarray(result.attributions, dtype=float))
    inside = np.array(
        [
            seq == 0 and begin < span[1] and end > span[0] and end > begin
            for (begin, end), seq in zip(result.offsets, result.sequence_ids, strict=True)
        ],
        dtype=bool,
    )
    total = float(weights.sum())
    share = float(weights[inside].sum()) / total if total > 0 else math.nan
    return share, bool(inside.any())


# --------------------------------------------------------------------------------------------
# The check.


def stratified_sample(
    groups: pd.Series | None, n: int, *, per_group: int, max_examples: int, seed: int
) -> list[int]:
    """Up to ``per_group`` random rows of each group, interleaved group by group, capped.

    Groups are taken in sorted order, one row of each in turn, so a cap below
    ``per_group * n_groups`` keeps every group represented. Without groups: a plain random sample.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        return sorted(int(i) for i in rng.permutation(n)[:max_examples])
    values = groups.to_numpy(dtype=object)
    picked = [
        [int(i) for i in rng.permutation(np.flatnonzero(values == g))[:per_group]]
        for g in sorted(set(values), key=str)
    ]
    order: list[int] = []
    for round_ in range(per_group):
        order.extend(p[round_] for p in picked if round_ < len(p))
    return order[:max_examples]


def _group_frame(groups: Any, n: int) -> pd.DataFrame | None:
    if groups is None:
        return None
    frame = pd.DataFrame(groups).reset_index(drop=True)
    if len(frame) != n:
        raise AuditError(
            f"length mismatch: groups has {len(frame)} rows but there are {n} texts",
            hint="pass one sensitive-feature row per text",
        )
    out = pd.DataFrame(index=range(n))
    for column in frame.columns:
        values = frame[column]
        out[str(column)] = values.astype(object).where(values.notna(), MISSING_GROUP).map(str)
    return out if out.shape[1] else None


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _identity_share(result: TokenAttribution) -> float:
    words = result.words()
    return identity_share([w for w, _ in words], [a for _, a in words]) if words else math.nan


def _mean_by(values: Sequence[float], keys: Sequence[str]) -> dict[str, float]:
    table = pd.DataFrame({"key": list(keys), "value": list(values)})
    return {str(k): float(v) for k, v in table.groupby("key", sort=True)["value"].mean().items()}


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}


def _completeness(
    results: Sequence[TokenAttribution], tolerance: float, max_steps: int
) -> dict[str, Any]:
    """Relative gaps per example (in sample order), their max and mean, and the steps used."""
    gaps = [r.relative_gap for r in results]
    return {
        "max_gap": max(gaps),
        "mean_gap": float(np.mean(gaps)),
        "max_abs_gap": max(r.gap for r in results),
        "tolerance": tolerance,
        "within_tolerance": bool(max(gaps) <= tolerance),
        "gaps": gaps,
        "steps_used": [r.n_steps for r in results],
        "max_steps": max_steps,
    }


def _example(
    text: str,
    row: int,
    groups: pd.Series | None,
    result: TokenAttribution,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """One explained input for the report's heatmap: its word pieces (no special tokens)."""
    kept = [k for k, special in enumerate(result.special) if not special]
    target = result.target
    return {
        "row": row,
        "group": None if groups is None else str(groups.iloc[row]),
        "text": text,
        "tokens": [result.tokens[k] for k in kept],
        "attributions": [result.attributions[k] for k in kept],
        "predicted": class_names[target] if target < len(class_names) else target,
        "probability": result.output,
        "baseline_probability": result.baseline_output,
    }


def _top_tokens(
    results: Sequence[TokenAttribution], class_names: Sequence[str], top_k: int
) -> dict[str, list[dict[str, Any]]]:
    """Per predicted class: the words with the largest mean attribution towards that class."""
    sums: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        for word, value in result.words():
            if any(ch.isalnum() for ch in word):
                sums[result.target][word.lower()].append(value)
    top: dict[str, list[dict[str, Any]]] = {}
    for cls in sorted(sums):
        rows = [(w, float(np.mean(v)), len(v)) for w, v in sums[cls].items()]
        rows.sort(key=lambda r: (-r[1], r[0]))
        name = class_names[cls] if cls < len(class_names) else str(cls)
        top[str(name)] = [
            {"token": w, "mean_attribution": m, "count": c} for w, m, c in rows[:top_k]
        ]
    return top


class ExplanationsCheck:
    """The explanations audit check: attributions on a stratified sample, per-group summaries.

    Parameters are stored as given (scikit-learn style) and validated in :meth:`run`.

    The section holds ``method``, ``target``, ``baseline``, ``n_examples``, ``sample`` (how it was
    drawn, rows per group), ``n_steps``, ``completeness`` (relative gaps per example, their max
    and mean, steps used), ``top_tokens`` (per predicted class), ``identity_share`` (attribute ->
    group -> mean share), ``identity_share_overall``, ``sensitive_field_share`` (records with
    sensitive fields in the text: column -> overall, by_group, n, and ``visible``, the fraction of
    examples in which the field survived truncation) and ``examples`` (for heatmaps).

    Cost: each example costs about ``n_steps`` forward and backward passes, so the defaults (8
    examples, 20 steps) cost about half an inference pass over 900 short texts.

    Args:
        per_group: examples drawn per group of the first sensitive attribute.
        max_examples: cap on the sample (groups are interleaved, so all stay represented).
        n_steps: integration steps to start with.
        max_steps: the most steps an example is escalated to when its gap is too large.
        tolerance: largest acceptable completeness gap relative to |F(x) - F(x')|.
        top_k: words listed per class in ``top_tokens``.
        n_report_examples: examples whose tokens and attributions the section carries (heatmaps).
        internal_batch_size: rows per forward pass inside the integral (memory bound).
    """

    name: str = "explanations"
    requires: tuple[str, ...] = ("texts", "model")

    def __init__(
        self,
        *,
        per_group: int = 4,
        max_examples: int = 8,
        n_steps: int = 20,
        max_steps: int = 160,
        tolerance: float = 0.05,
        top_k: int = 10,
        n_report_examples: int = 4,
        internal_batch_size: int | None = 128,
    ) -> None:
        self.per_group = per_group
        self.max_examples = max_examples
        self.n_steps = n_steps
        self.max_steps = max_steps
        self.tolerance = tolerance
        self.top_k = top_k
        self.n_report_examples = n_report_examples
        self.internal_batch_size = internal_batch_size

    def run(self, context: AuditContext) -> dict[str, Any]:
        context.require(self)
        texts = list(context.texts or [])
        if not texts:
            raise AuditError("empty input: there are no texts to explain")
        if self.per_group < 1 or self.max_examples < 1:
            raise AuditError(
                f"per_group and max_examples must be at least 1, "
                f"got {self.per_group} and {self.max_examples}"
            )
        extras = context.extras
        tokenizer = extras.get("tokenizer")
        if tokenizer is None:
            raise AuditError(
                "the explanations check needs the model's tokenizer in extras['tokenizer']",
                hint="build the context with ethos.audit.run_context.context_from_run",
            )
        pairs = extras.get("text_pairs")
        if pairs is not None and len(pairs) != len(texts):
            raise AuditError(f"length mismatch: {len(texts)} texts but {len(pairs)} text pairs")
        groups = _group_frame(context.groups, len(texts))
        first = None if groups is None else groups.iloc[:, 0]
        sample = stratified_sample(
            first,
            len(texts),
            per_group=self.per_group,
            max_examples=self.max_examples,
            seed=context.seed,
        )
        results = token_attributions(
            context.model,
            tokenizer,
            [texts[i] for i in sample],
            target="predicted",
            pairs=None if pairs is None else [pairs[i] for i in sample],
            n_steps=self.n_steps,
            max_length=int(extras.get("max_length") or 512),
            tolerance=self.tolerance,
            max_steps=self.max_steps,
            internal_batch_size=self.internal_batch_size,
        )
        class_names = [str(c) for c in (extras.get("label_names") or [])]
        shares = [_identity_share(r) for r in results]
        section: dict[str, Any] = {
            "method": METHOD,
            "target": "predicted class probability",
            "baseline": "non-special tokens replaced by the padding token",
            "n_examples": len(results),
            "sample": {
                "stratified_by": None if first is None else str(first.name),
                "per_group": self.per_group,
                "max_examples": self.max_examples,
                "by_group": {} if first is None else _counts(first.iloc[sample]),
            },
            "n_steps": self.n_steps,
            "completeness": _completeness(results, self.tolerance, self.max_steps),
            "top_tokens": _top_tokens(results, class_names, self.top_k),
            "identity_share": {
                str(column): _mean_by(shares, list(values.iloc[sample]))
                for column, values in ({} if groups is None else groups.items())
            },
            "identity_share_overall": _nanmean(shares),
            "sensitive_field_share": self._field_shares(context, sample, results, groups),
            "examples": [
                _example(texts[i], i, first, r, class_names)
                for i, r in list(zip(sample, results, strict=True))[: self.n_report_examples]
            ],
        }
        from ethos.audit.protocol import to_jsonable

        return dict(to_jsonable(section))

    def _field_shares(
        self,
        context: AuditContext,
        sample: Sequence[int],
        results: Sequence[TokenAttribution],
        groups: pd.DataFrame | None,
    ) -> dict[str, Any]:
        """Share of |a| on each sensitive field's "name: value" text, overall and per group."""
        extras = context.extras
        columns = list(extras.get("sensitive_in_text") or [])
        fields = list(extras.get("text_fields") or [])
        if not columns or not fields or results[0].offsets is None:
            return {}
        texts = list(context.texts or [])
        records = extras.get("records")
        out: dict[str, Any] = {}
        for column in columns:
            shares: list[float] = []
            visible: list[bool] = []
            keys: list[str] = []
            for i, result in zip(sample, results, strict=True):
                spans = field_spans(texts[i], fields)
                if spans is None or column not in spans:
                    continue
                share, seen = span_share(result, spans[column])
                shares.append(share)
                visible.append(seen)
                if groups is not None and column in groups.columns:
                    keys.append(str(groups[column].iloc[i]))
                elif isinstance(records, pd.DataFrame) and column in records.columns:
                    keys.append(str(records[column].iloc[i]))
                else:
                    keys.append(MISSING_GROUP)
            if not shares:
                continue
            out[column] = {
                "overall": _nanmean(shares),
                "by_group": _mean_by(shares, keys),
                "n": len(shares),
                "visible": float(np.mean(visible)),
            }
        return out
