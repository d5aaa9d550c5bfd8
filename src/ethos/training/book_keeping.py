"""Per-example clipping at about the cost of an ordinary backward pass: ghost norms + book-keeping.

DP-SGD needs every example's gradient norm, to clip each example's contribution to at most ``C``.
Opacus's per-sample mode materialises each example's gradient (a batch-sized copy of every weight,
built with small batched matrix products), which made a full fine-tuning step 1.7x a non-private
one here; its ghost clipping avoids the copies but runs a second backward pass. This module does
neither, after Bu et al., "Differentially Private Optimization on Large Model at Small Cost"
(ICML 2023, "book-keeping"), and Li et al. (ICLR 2022, "ghost clipping"):

1. One backward pass computes only the gradients with respect to each trained layer's *output*
   (``torch.autograd.grad`` asked for those tensors skips every weight-gradient product, which is
   about half the work of an ordinary backward pass).
2. Each layer's per-example gradient norm comes from its input ``a`` and output gradient ``g``
   without forming the gradient: for a linear layer the gradient of example ``i`` is
   ``G_i = g_i^T a_i`` (summed over the ``T`` tokens), and
   ``||G_i||^2 = sum((a_i a_i^T) * (g_i g_i^T))``, two ``T x T`` Gram matrices (ghost norm), which
   costs ``T^2 (d_in + d_out)`` instead of ``T d_in d_out``; an embedding's is the same with
   "same token id" in place of ``a_i a_i^T``; a LayerNorm's and a bias's per-example gradients are
   small enough to form.
3. With every example's total norm known, its clip factor ``c_i = min(1, C / (norm_i + 1e-6))``
   (Opacus's rule) scales ``g_i``, and each layer's clipped sum is one ordinary weight-gradient
   product of the scaled ``g`` with the kept ``a``: the work step 1 skipped, done once.

The result is bit-for-bit the quantity Opacus's per-sample mode clips and sums (tests hold every
parameter to 1e-5 of it, with LoRA and with padding); noise and the division by the expected batch
size follow :class:`opacus.optimizers.DPOptimizer`. Layers it does not know (anything holding a
trained weight that is not a linear, embedding or LayerNorm layer) are refused by name, before
training, rather than clipped wrongly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from ethos.errors import ModelError, listed

SUPPORTED_LAYERS = (nn.Linear, nn.Embedding, nn.LayerNorm)
CLIP_STABILITY = 1e-6
"""Added to each norm before dividing, as Opacus does, so that a zero gradient is not 0/0."""


@dataclass
class _Layer:
    """One trained layer and what its forward passes in this step recorded."""

    name: str
    module: nn.Module
    inputs: list[torch.Tensor] = field(default_factory=list)
    """Detached inputs, one per call (token ids for an embedding)."""
    outputs: list[torch.Tensor] = field(default_factory=list)
    """The outputs, still in the graph: the backward pass is asked for their gradients."""

    def trained(self) -> Iterator[tuple[str, nn.Parameter]]:
        for name, param in self.module.named_parameters(recurse=False):
            if param.requires_grad:
                yield name, param


Sums = dict[nn.Parameter, torch.Tensor]
"""Each trained weight's sum of clipped per-example gradients over a batch."""


class BookKeepingClipper:
    """Hooks on every trained layer of ``model``; :meth:`clipped_sum` turns a batch's per-example
    losses into each weight's sum of clipped per-example gradients."""

    def __init__(self, model: nn.Module, max_grad_norm: float) -> None:
        self.max_grad_norm = float(max_grad_norm)
        self.last_norms: torch.Tensor | None = None
        """The last batch's unclipped per-example gradient norms (for tests and diagnostics)."""
        self.layers = _trained_layers(model)
        self._handles: list[RemovableHandle] = [
            layer.module.register_forward_hook(self._recorder(layer)) for layer in self.layers
        ]

    def _recorder(self, layer: _Layer) -> Any:
        def record(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
            if module.training and torch.is_grad_enabled() and output.requires_grad:
                layer.inputs.append(args[0].detach())
                layer.outputs.append(output)

        return record

    def parameters(self) -> list[nn.Parameter]:
        return [param for layer in self.layers for _, param in layer.trained()]

    def clipped_sum(self, per_example_loss: torch.Tensor) -> Sums:
        """Backpropagate ``per_example_loss`` (one loss per example) once; each trained weight's
        ``sum_i c_i * grad_i``."""
        n = int(per_example_loss.shape[0])
        recorded = [layer for layer in self.layers if layer.outputs]
        outputs = [out for layer in recorded for out in layer.outputs]
        grads = (
            torch.autograd.grad(per_example_loss.sum(), outputs, allow_unused=True)
            if outputs
            else ()
        )
        squared = torch.zeros(n, dtype=torch.float32, device=per_example_loss.device)
        grams: dict[tuple[Any, ...], torch.Tensor] = {}
        pieces: list[_Piece] = []
        position = 0
        for layer in recorded:
            calls = len(layer.outputs)
            inputs, output_grads = _stacked(layer, grads[position : position + calls], n)
            position += calls
            for piece in _pieces(layer, inputs, output_grads, grams):
                squared += piece.squared_norms
                pieces.append(piece)
        norms = squared.sqrt()
        factors = (self.max_grad_norm / (norms + CLIP_STABILITY)).clamp(max=1.0)
        sums: Sums = {}
        for piece in pieces:
            summed = piece.clipped_sum(factors)
            sums[piece.param] = summed if piece.param not in sums else sums[piece.param] + summed
        for param in self.parameters():  # weights no example reached this step
            if param not in sums:
                sums[param] = torch.zeros_like(param)
        self.forget()
        self.last_norms = norms
        return sums

    def forget(self) -> None:
        """Drop what the forward passes recorded (after each step, and after an evaluation)."""
        for layer in self.layers:
            layer.inputs.clear()
            layer.outputs.clear()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.forget()


def noisy_mean_gradient(
    sums: Sums,
    noise_multiplier: float,
    max_grad_norm: float,
    expected_batch_size: int,
    order: Sequence[nn.Parameter] = (),
) -> None:
    """``param.grad = (sum + N(0, (sigma C)^2)) / expected_batch_size`` for each weight, as
    :class:`opacus.optimizers.DPOptimizer` sets it for a mean-reduced loss (the expected batch
    size, not the drawn one: dividing by a Poisson batch's actual size would leak it). Noise is
    drawn weight by weight in ``order`` (the optimizer's), then any others: the same draws as
    Opacus's optimizer makes from the same random state."""
    std = noise_multiplier * max_grad_norm
    first = [p for p in order if p in sums]
    seen = set(first)
    ordered = first + [p for p in sums if p not in seen]
    for param in ordered:
        summed = sums[param]
        noisy = torch.normal(mean=0.0, std=std, size=summed.shape, device=summed.device)
        param.grad = noisy.add_(summed).div_(expected_batch_size).to(param.dtype)


def unsupported_layers(model: nn.Module) -> list[str]:
    """Names (and types) of the layers holding a trained weight that this module cannot clip."""
    found = []
    for name, module in model.named_modules():
        if _holds_trained(module) and (problem := _unsupported(module)):
            found.append(f"{name or 'the model'} ({problem})")
    return found


def _trained_layers(model: nn.Module) -> list[_Layer]:
    problems = unsupported_layers(model)
    if problems:
        raise ModelError(
            f"book-keeping clipping cannot compute per-example gradients of {listed(problems)}",
            hint="it handles linear, embedding and LayerNorm layers; set "
            "train.privacy.clipping: per_sample to let Opacus try, or freeze those layers",
        )
    return [
        _Layer(name, module) for name, module in model.named_modules() if _holds_trained(module)
    ]


def _holds_trained(module: nn.Module) -> bool:
    """Whether ``module`` itself (not a child) holds a weight that trains."""
    return any(p.requires_grad for p in module.parameters(recurse=False))


def _unsupported(module: nn.Module) -> str:
    if not isinstance(module, SUPPORTED_LAYERS):
        return type(module).__name__
    if isinstance(module, nn.Embedding) and (
        module.sparse or module.scale_grad_by_freq or module.max_norm is not None
    ):
        return "an embedding with sparse, scale_grad_by_freq or max_norm"
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) != 1:
        return "a LayerNorm over more than the last dimension"
    return ""


def _stacked(
    layer: _Layer, grads: tuple[torch.Tensor | None, ...], n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's inputs and output gradients over all its calls, as ``(n, T, ...)``: several
    calls in one forward pass add to one gradient exactly as more tokens would."""
    inputs, outputs = [], []
    for inp, out, grad in zip(layer.inputs, layer.outputs, grads, strict=True):
        if out.shape[0] != n:
            raise ModelError(
                f"layer {layer.name} saw a batch of {out.shape[0]} rows for {n} examples: "
                "its per-example gradients cannot be told apart",
                hint="DP-SGD needs batch-first layers with one row per example; pick a "
                "BERT-style model, or freeze this layer",
            )
        grad = torch.zeros_like(out) if grad is None else grad
        ids = isinstance(layer.module, nn.Embedding)
        inputs.append(inp.reshape(n, -1) if ids else inp.reshape(n, -1, inp.shape[-1]))
        outputs.append(grad.reshape(n, -1, grad.shape[-1]))
    if len(inputs) == 1:  # the usual case: no copy
        return inputs[0], outputs[0]
    return torch.cat(inputs, dim=1), torch.cat(outputs, dim=1)


@dataclass
class _Piece:
    """One weight's share of a step: its per-example squared norms, and how to form its clipped
    sum once the clip factors are known."""

    param: nn.Parameter
    squared_norms: torch.Tensor
    per_example: torch.Tensor | None = None
    """Small weights (biases, LayerNorm): the per-example gradients themselves, ``(n, *shape)``."""
    output_grads: torch.Tensor | None = None
    inputs: torch.Tensor | None = None
    """Linear and embedding weights: the output gradients and inputs (ids) they come from."""

    def clipped_sum(self, factors: torch.Tensor) -> torch.Tensor:
        param = self.param
        if self.per_example is not None:
            flat = self.per_example.reshape(self.per_example.shape[0], -1)
            summed = (factors.to(flat.dtype) @ flat).reshape(param.shape)
        else:
            assert self.output_grads is not None and self.inputs is not None
            g = self.output_grads * factors.to(self.output_grads.dtype)[:, None, None]
            g = g.reshape(-1, g.shape[-1])
            if self.inputs.is_floating_point():  # a linear layer: one weight-gradient product
                summed = g.t() @ self.inputs.reshape(-1, self.inputs.shape[-1]).to(g.dtype)
            else:  # an embedding: each token's gradient added to its row
                summed = torch.zeros(param.shape, dtype=g.dtype, device=g.device)
                summed.index_add_(0, self.inputs.reshape(-1), g)
        return summed.to(param.dtype)


def _pieces(
    layer: _Layer,
    inputs: torch.Tensor,
    grads: torch.Tensor,
    grams: dict[tuple[Any, ...], torch.Tensor],
) -> list[_Piece]:
    """The layer's trained weights as pieces. ``grams`` keeps each input's ``a a^T`` for the
    step: query, key and value read the same input."""
    module, trained, pieces = layer.module, dict(layer.trained()), []
    if isinstance(module, nn.Linear):
        if "weight" in trained:
            norms = _linear_weight_norms(inputs, grads, grams)
            pieces.append(_Piece(trained["weight"], norms, output_grads=grads, inputs=inputs))
        if "bias" in trained:
            pieces.append(_small(trained["bias"], grads.sum(dim=1)))
    elif isinstance(module, nn.Embedding):
        if "weight" in trained:
            g = _without_padding(module, inputs, grads)
            same = inputs[:, :, None] == inputs[:, None, :]
            norms = (torch.bmm(g.float(), g.float().transpose(1, 2)) * same).sum(dim=(1, 2))
            pieces.append(_Piece(trained["weight"], norms, output_grads=g, inputs=inputs))
    else:
        assert isinstance(module, nn.LayerNorm)
        if "weight" in trained:
            normalised = F.layer_norm(inputs.float(), module.normalized_shape, eps=module.eps)
            pieces.append(_small(trained["weight"], (grads.float() * normalised).sum(dim=1)))
        if "bias" in trained:
            pieces.append(_small(trained["bias"], grads.sum(dim=1)))
    return pieces


def _small(param: nn.Parameter, per_example: torch.Tensor) -> _Piece:
    flat = per_example.float().reshape(per_example.shape[0], -1)
    return _Piece(param, flat.pow(2).sum(dim=1), per_example=per_example)


def _linear_weight_norms(
    a: torch.Tensor, g: torch.Tensor, grams: dict[tuple[Any, ...], torch.Tensor]
) -> torch.Tensor:
    """``||g_i^T a_i||_F^2`` per example: by two T x T Gram matrices when that is cheaper than
    forming the d_out x d_in gradient, else by forming it (long sequences, small layers)."""
    tokens, d_in, d_out = a.shape[1], a.shape[2], g.shape[2]
    a, g = a.float(), g.float()
    if tokens == 1:
        return a.pow(2).sum(dim=(1, 2)) * g.pow(2).sum(dim=(1, 2))
    if tokens * tokens * (d_in + d_out) > tokens * d_in * d_out:
        return torch.bmm(g.transpose(1, 2), a).pow(2).sum(dim=(1, 2))
    key = (a.data_ptr(), tuple(a.shape), a.stride())
    if key not in grams:  # held by its piece for the step, so the address is not reused
        grams[key] = torch.bmm(a, a.transpose(1, 2))
    return (grams[key] * torch.bmm(g, g.transpose(1, 2))).sum(dim=(1, 2))


def _without_padding(module: nn.Embedding, ids: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The padding row of an embedding gets no gradient (torch's rule), so its tokens add none."""
    if module.padding_idx is None:
        return g
    return g * (ids != module.padding_idx).unsqueeze(-1).to(g.dtype)
