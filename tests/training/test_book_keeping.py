"""Book-keeping clipping gives exactly what Opacus's per-sample clipping gives.

The reference is Opacus's ``GradSampleModule``: every example's gradient materialised, clipped
with Opacus's rule ``min(1, C / (norm + 1e-6))`` and summed. The fast path never forms those
gradients, so any slip in a ghost norm, an embedding's repeated tokens, a padding row, LayerNorm's
recomputed ``x_hat`` or a layer called twice shows up here as a gradient off by more than 1e-5.
A layer reused within one forward pass, and a 2-D (token-less) input, are checked against a
plain loop that backpropagates one example at a time.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ethos.config import LoraConfig, PrivacyConfig
from ethos.errors import ModelError
from ethos.models.lora import apply_lora
from ethos.training.book_keeping import (
    CLIP_STABILITY,
    BookKeepingClipper,
    noisy_mean_gradient,
    unsupported_layers,
)
from ethos.training.privacy import freeze_for_privacy, make_private, with_position_ids

TOLERANCE = 1e-5
VOCAB = 60
LENGTHS = (9, 7, 4, 9, 2, 6)  # real tokens per row; the rest is padding


def tiny_bert(*, dropout: float = 0.1) -> Any:
    """Two BERT layers with a classification head, seeded."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=16,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=0,
    )
    config.num_labels = 2
    return BertForSequenceClassification(config).train()


def padded_batch(*, attended_pad: bool = False) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Rows of different lengths, padded with id 0; one token repeated within a row, so an
    embedding row gets two gradients from one example; optionally the padding id once where
    attention looks."""
    generator = torch.Generator().manual_seed(1)
    width = max(LENGTHS)
    ids = torch.randint(1, VOCAB, (len(LENGTHS), width), generator=generator)
    ids[0, 3] = ids[0, 1]
    mask = torch.ones_like(ids)
    for row, length in enumerate(LENGTHS):
        ids[row, length:] = 0
        mask[row, length:] = 0
    labels = torch.randint(0, 2, (len(LENGTHS),), generator=generator)
    if attended_pad:
        ids[1, 2] = 0
    return with_position_ids({"input_ids": ids, "attention_mask": mask}), labels


def reference_sums(
    model: nn.Module, forward: Callable[[nn.Module], torch.Tensor], clip: float
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Opacus per-sample gradients of a copy of ``model``, clipped and summed; and the norms."""
    from opacus import GradSampleModule

    copied = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = GradSampleModule(copied, loss_reduction="sum")
        forward(wrapped).sum().backward()
    trained = [(n, p) for n, p in copied.named_parameters() if p.requires_grad]
    n = int(trained[0][1].grad_sample.shape[0])
    norms = torch.stack([p.grad_sample.reshape(n, -1).norm(dim=1) for _, p in trained]).norm(dim=0)
    factors = (clip / (norms + CLIP_STABILITY)).clamp(max=1.0)
    sums = {name: torch.einsum("i,i...->...", factors, p.grad_sample) for name, p in trained}
    wrapped.remove_hooks()
    return sums, norms


def fast_sums(
    model: nn.Module, forward: Callable[[nn.Module], torch.Tensor], clip: float
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    clipper = BookKeepingClipper(model, clip)
    sums = clipper.clipped_sum(forward(model))
    names = {p: name for name, p in model.named_parameters()}
    assert clipper.last_norms is not None
    clipper.remove()
    return {names[p]: s for p, s in sums.items()}, clipper.last_norms


def bert_loss(batch: dict[str, torch.Tensor], labels: torch.Tensor) -> Any:
    def forward(model: nn.Module) -> torch.Tensor:
        torch.manual_seed(7)  # the same dropout masks in both passes
        return F.cross_entropy(model(**batch).logits, labels, reduction="none")

    return forward


def assert_same_sums(model: nn.Module, forward: Any, clip: float) -> torch.Tensor:
    """Compare every trained weight's clipped sum; return the norms (to check clipping bit)."""
    expected, expected_norms = reference_sums(model, forward, clip)
    got, norms = fast_sums(model, forward, clip)
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=TOLERANCE, rtol=0, msg=name)
    torch.testing.assert_close(norms, expected_norms, atol=TOLERANCE, rtol=1e-5)
    assert all(p.grad is None for p in model.parameters()), "no plain gradient is formed"
    return norms


@pytest.mark.parametrize("train_embeddings", [False, True], ids=["frozen_table", "table"])
def test_full_fine_tuning_matches_opacus_per_sample_to_1e_5(train_embeddings: bool) -> None:
    model = tiny_bert()
    if not train_embeddings:
        freeze_for_privacy(model, PrivacyConfig(noise_multiplier=1.0))
    batch, labels = padded_batch()
    forward = bert_loss(batch, labels)
    _, unclipped = reference_sums(model, forward, 1e9)
    clip = float(unclipped.median())  # some examples clipped, some not
    norms = assert_same_sums(model, forward, clip)
    assert (norms > clip).any() and (norms < clip).any()


def test_lora_matches_opacus_per_sample_to_1e_5() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = apply_lora(tiny_bert(), LoraConfig(r=4, alpha=8), task="classification")
    model.train()
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trained) and any("classifier" in n for n in trained)
    batch, labels = padded_batch()
    forward = bert_loss(batch, labels)
    _, unclipped = reference_sums(model, forward, 1e9)
    assert_same_sums(model, forward, float(unclipped.median()))


def test_padding_rows_add_nothing() -> None:
    """Extra padding columns change no gradient: padded tokens carry no example's signal."""
    model = tiny_bert(dropout=0.0)
    batch, labels = padded_batch()
    wider = {k: F.pad(v, (0, 5)) for k, v in batch.items()}
    wider["position_ids"] = with_position_ids({"input_ids": wider["input_ids"]})["position_ids"]
    narrow, _ = fast_sums(model, bert_loss(batch, labels), 0.5)
    wide, _ = fast_sums(model, bert_loss(wider, labels), 0.5)
    for name in narrow:
        torch.testing.assert_close(wide[name], narrow[name], atol=TOLERANCE, rtol=0, msg=name)


class Reused(nn.Module):
    """A linear layer applied twice in one forward pass, a 2-D head, a LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.shared = nn.Linear(5, 5)
        self.norm = nn.LayerNorm(5)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.shared(torch.tanh(self.shared(x))))
        return self.head(self.norm(h).mean(dim=1))


def one_at_a_time(
    model: nn.Module, loss_of: Callable[[int], torch.Tensor], n: int, clip: float
) -> dict:
    """The definition: each example's gradient on its own, clipped, summed."""
    total: dict[str, torch.Tensor] = {}
    for i in range(n):
        model.zero_grad()
        loss_of(i).backward()
        grads = {
            n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for n, p in model.named_parameters()
            if p.requires_grad
        }
        norm = torch.stack([g.norm() for g in grads.values()]).norm()
        factor = min(1.0, clip / (float(norm) + CLIP_STABILITY))
        for name, grad in grads.items():
            total[name] = total.get(name, 0) + factor * grad
    model.zero_grad()
    return total


def test_a_layer_used_twice_matches_one_example_at_a_time() -> None:
    model = Reused()
    generator = torch.Generator().manual_seed(4)
    x, y = torch.randn(6, 3, 5, generator=generator), torch.tensor([0, 1, 1, 0, 1, 0])
    expected = one_at_a_time(
        model, lambda i: F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), len(y), 0.3
    )
    got, _ = fast_sums(model, lambda m: F.cross_entropy(m(x), y, reduction="none"), 0.3)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=TOLERANCE, rtol=0, msg=name)


def test_the_padding_row_takes_no_gradient_as_in_torch() -> None:
    """An attended padding id: torch gives the padding row no gradient, and neither does
    book-keeping (Opacus's per-sample embedding gradients ignore ``padding_idx``, so the reference
    here is one example at a time)."""
    model = tiny_bert(dropout=0.0)
    batch, labels = padded_batch(attended_pad=True)

    def loss_of(i: int) -> torch.Tensor:
        row = {k: v[i : i + 1] for k, v in batch.items()}
        return F.cross_entropy(model(**row).logits, labels[i : i + 1])

    expected = one_at_a_time(model, loss_of, len(labels), 0.05)
    got, _ = fast_sums(model, bert_loss(batch, labels), 0.05)
    assert float(got["bert.embeddings.word_embeddings.weight"][0].abs().max()) == 0.0
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=TOLERANCE, rtol=0, msg=name)


def test_a_private_step_equals_opacus_per_sample_step_with_the_same_seed() -> None:
    """Clip, noise (same draws from the same random state) and AdamW: the same weights after."""
    batch, labels = padded_batch()
    weights = []
    for clipping in ("book_keeping", "per_sample"):
        model = tiny_bert()
        config = PrivacyConfig(noise_multiplier=0.7, max_grad_norm=0.5, clipping=clipping)
        freeze_for_privacy(model, config)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        private = make_private(
            model, optimizer, config, n_examples=60, batch_size=6, planned_steps=10
        )
        torch.manual_seed(11)
        per_example = F.cross_entropy(private.module(**batch).logits, labels, reduction="none")
        private.loss(per_example).backward()
        private.optimizer.step()
        private.detach()
        weights.append({n: p.detach().clone() for n, p in model.named_parameters()})
    fast, opacus = weights
    moved = 0
    for name in opacus:
        torch.testing.assert_close(fast[name], opacus[name], atol=TOLERANCE, rtol=0, msg=name)
        moved += int(not torch.equal(opacus[name], tiny_bert().state_dict()[name]))
    assert moved > 10


def test_noise_has_the_accountants_scale() -> None:
    """sigma * C / expected batch size per coordinate, whatever the batch drawn."""
    weight = nn.Parameter(torch.zeros(200_000))
    torch.manual_seed(0)
    noisy_mean_gradient({weight: torch.zeros(200_000)}, 2.0, 0.5, 10)
    assert weight.grad is not None
    assert float(weight.grad.std()) == pytest.approx(2.0 * 0.5 / 10, rel=0.01)
    assert abs(float(weight.grad.mean())) < 1e-3


class Convolved(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 3)
        self.head = nn.Linear(2, 2)


def test_layers_it_cannot_clip_are_refused_by_name() -> None:
    model = Convolved()
    assert unsupported_layers(model) == ["conv (Conv1d)"]
    with pytest.raises(ModelError, match=r"(?s)conv \(Conv1d\).*clipping: per_sample"):
        BookKeepingClipper(model, 1.0)
    model.conv.requires_grad_(False)  # frozen layers need no clipping
    BookKeepingClipper(model, 1.0).remove()


def test_a_layer_that_mixes_examples_is_refused() -> None:
    """A shared (1, L) position row would give one gradient for the whole batch."""
    model = tiny_bert(dropout=0.0)
    batch, labels = padded_batch()
    shared = {**batch, "position_ids": batch["position_ids"][:1]}
    clipper = BookKeepingClipper(model, 1.0)
    per_example = F.cross_entropy(model(**shared).logits, labels, reduction="none")
    with pytest.raises(ModelError, match="position_embeddings saw a batch of 1 rows for 6"):
        clipper.clipped_sum(per_example)
    clipper.remove()


def test_evaluation_passes_record_nothing() -> None:
    model = tiny_bert()
    clipper = BookKeepingClipper(model, 1.0)
    batch, _ = padded_batch()
    with torch.no_grad():
        model(**batch)
    model.eval()
    model(**batch)
    assert all(not layer.outputs for layer in clipper.layers)
    clipper.remove()
    model.train()
    model(**batch)
    assert all(not layer.outputs for layer in clipper.layers), "removed hooks record nothing"
