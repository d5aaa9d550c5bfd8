"""Adversarial training: perturbed training texts, and attacks in token-embedding space.

Two complementary defences, both measured afterwards by the audit's robustness section:

* **Augmentation** with the audit's own perturbation families (keyboard typos, swaps, casing,
  whitespace, word dropout, gender-term swaps): each epoch a fraction of the training texts is
  replaced by a perturbed copy, so the model learns that a typo or a pronoun does not change the
  label. Using the audit's functions means training and measurement agree on what "a typo" is.
* **Embedding attacks** (Miyato et al. 2017, FGM; Madry et al. 2018, PGD): after the clean
  backward pass, the word-embedding output of each example is pushed by ``epsilon`` (L2, over its
  real tokens) in the direction that raises its loss, and the loss there is added to the
  gradient. Written by hand: no maintained library implements these for Hugging Face models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ethos.config import AdversarialConfig
from ethos.errors import ConfigError

LossFn = Callable[[Any, torch.Tensor], torch.Tensor]
"""``(model outputs, labels) -> reduced loss``: the same loss the clean step minimises."""

GENDER_SWAP = "gender_swap"


def augmentation_families() -> tuple[str, ...]:
    from ethos.text.perturb import NOISE

    return (*NOISE, GENDER_SWAP)


def check_families(families: Sequence[str]) -> None:
    known = augmentation_families()
    unknown = [f for f in families if f not in known]
    if unknown:
        raise ConfigError(
            f"train.adversarial.augment names unknown perturbation families {unknown}",
            hint=f"choose from: {', '.join(known)}",
        )


def augment_texts(
    texts: Sequence[str],
    families: Sequence[str],
    fraction: float,
    generator: np.random.Generator,
) -> tuple[list[str], int]:
    """A copy of ``texts`` with about ``fraction`` of them perturbed, each by one random family.

    Returns the texts and how many actually changed (a text with nothing to perturb stays).
    """
    from ethos.text.perturb import NOISE, swap_gender

    out = list(texts)
    chosen = np.flatnonzero(generator.random(len(out)) < fraction)
    picks = generator.integers(0, len(families), size=len(chosen))
    changed = 0
    for row, pick in zip(chosen, picks, strict=True):
        family = families[int(pick)]
        text = out[row]
        if family == GENDER_SWAP:
            perturbed, _ = swap_gender(text)
        else:
            perturbed = NOISE[family](text, generator)
        changed += perturbed != text
        out[row] = perturbed
    return out, changed


class EmbeddingAttack:
    """FGM (one step) or PGD (``steps`` projected steps) on the word-embedding output.

    Use: wrap the clean forward in :meth:`watch`, call ``backward`` on the clean loss, then
    :meth:`attack`, which adds ``weight`` times the adversarial loss's gradient to the parameters.
    """

    def __init__(self, config: AdversarialConfig) -> None:
        self.config = config
        self._clean: torch.Tensor | None = None
        self.last_loss: float = 0.0

    @contextmanager
    def watch(self, model: torch.nn.Module) -> Iterator[None]:
        """Keep the clean word-embedding output and its gradient for the attack's first step."""
        embeddings = _word_embeddings(model)

        def keep(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
            if output.requires_grad:
                output.retain_grad()
            self._clean = output

        handle = embeddings.register_forward_hook(keep)
        try:
            yield
        finally:
            handle.remove()

    def attack(
        self,
        model: torch.nn.Module,
        batch: dict[str, torch.Tensor],
        labels: torch.Tensor,
        loss_fn: LossFn,
    ) -> None:
        clean = self._clean
        self._clean = None
        if clean is None:
            return
        mask = batch["attention_mask"].unsqueeze(-1).to(clean.dtype)
        epsilon = self.config.epsilon

        def ascent(delta: torch.Tensor, size: float) -> torch.Tensor:
            delta = delta.detach().requires_grad_(True)
            with _shifted(model, delta):
                loss = loss_fn(model(**batch), labels)
            (grad,) = torch.autograd.grad(loss, delta)
            return _project(delta.detach() + _scaled(grad * mask, size), epsilon)

        if self.config.embedding == "fgm":
            if clean.grad is not None:  # the clean backward already gave the direction
                delta = _scaled(clean.grad.detach() * mask, epsilon)
            else:  # frozen embeddings (LoRA): one extra pass for the direction
                delta = ascent(torch.zeros_like(clean), epsilon)
        else:
            step = 2.5 * epsilon / self.config.steps  # Madry et al.'s step size rule
            delta = torch.zeros_like(clean)
            for _ in range(self.config.steps):
                delta = ascent(delta, step)
        with _shifted(model, delta.detach()):
            adversarial = loss_fn(model(**batch), labels)
        (self.config.weight * adversarial).backward()
        self.last_loss = float(adversarial.detach())


def _word_embeddings(model: torch.nn.Module) -> torch.nn.Module:
    getter = getattr(model, "get_input_embeddings", None)
    if getter is None:
        raise ConfigError(
            "train.adversarial.embedding needs a model with input embeddings",
            hint="set train.adversarial.embedding: none",
        )
    module: torch.nn.Module = getter()
    return module


@contextmanager
def _shifted(model: torch.nn.Module, delta: torch.Tensor) -> Iterator[None]:
    def add(_module: Any, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        return output + delta

    handle = _word_embeddings(model).register_forward_hook(add)
    try:
        yield
    finally:
        handle.remove()


def _scaled(direction: torch.Tensor, size: float) -> torch.Tensor:
    """``direction`` scaled to L2 norm ``size`` per example (zero stays zero)."""
    norms = direction.flatten(1).norm(dim=1).clamp_min(1e-12)
    return direction * (size / norms).view(-1, *([1] * (direction.dim() - 1)))


def _project(delta: torch.Tensor, radius: float) -> torch.Tensor:
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = torch.clamp(radius / norms, max=1.0)
    return delta * factor.view(-1, *([1] * (delta.dim() - 1)))
