"""Token attributions by layer integrated gradients, with a completeness check.

Integrated gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks") on
the output of the model's input-embedding layer, computed by captum's ``LayerIntegratedGradients``:
for an input x, a baseline x' and an output F, the attribution of token position i is

    a_i = sum_d (e_id - e'_id) * integral_0^1 dF(e' + t (e - e')) / de_id dt

with a Gauss-Legendre quadrature of ``n_steps`` points. The baseline keeps the special tokens and
replaces every other token by [PAD]; F is the softmax probability of the target class, so
attributions are in probability units. Completeness (sum_i a_i = F(x) - F(x')) is checked per
example, and an example whose relative gap exceeds the tolerance is attributed again with twice
the steps, up to ``max_steps``.

This is a capability of a model, so it lives with the models: the audit's explanations check
(:mod:`ethos.audit.explanations`, identity-term shares per group) and serving's ``/v1/explain``
both call :func:`token_attributions` through :class:`ethos.models.inference.RunModel` or directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ethos.errors import ModelError

if TYPE_CHECKING:
    import torch

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
        raise ModelError(
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
        raise ModelError("empty input: there are no texts to explain")
    if pairs is not None and len(pairs) != len(texts):
        raise ModelError(f"length mismatch: {len(texts)} texts but {len(pairs)} second texts")
    if n_steps < 1 or max_steps < n_steps:
        raise ModelError(f"need 1 <= n_steps <= max_steps, got {n_steps} and {max_steps}")
    if not tolerance > 0:
        raise ModelError(f"tolerance must be positive, got {tolerance}")
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        raise ModelError(
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
            raise ModelError(f"target must be 'predicted' or class indices, got {target!r}")
        return None
    chosen = (
        [int(target)] * n if isinstance(target, (int, np.integer)) else [int(t) for t in target]
    )
    if len(chosen) != n:
        raise ModelError(f"length mismatch: {n} texts but {len(chosen)} targets")
    bad = [t for t in chosen if not 0 <= t < (n_labels or t + 1)]
    if bad:
        raise ModelError(f"target classes {sorted(set(bad))} are outside 0..{n_labels - 1}")
    return chosen


# --------------------------------------------------------------------------------------------
# Identity terms and sensitive fields.
