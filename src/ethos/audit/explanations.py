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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ethos.audit.errors import AuditError
from ethos.audit.validation import MISSING_GROUP
from ethos.errors import ModelError
from ethos.models.attribution import (
    FIELD_SEPARATOR,
    METHOD,
    TokenAttribution,
    token_attributions,
)

if TYPE_CHECKING:
    from ethos.audit.protocol import AuditContext


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
        try:
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
        except ModelError as exc:  # the model cannot be explained as asked: an audit error
            raise AuditError(exc.message, hint=exc.hint) from None
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
