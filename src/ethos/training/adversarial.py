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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.hooks import RemovableHandle

from ethos.config import AdversarialConfig, RunConfig
from ethos.data import Dataset
from ethos.errors import ConfigError
from ethos.training.batching import Encoded, encode
from ethos.training.strategies import EpochData, Plan, Step, Strategy

if TYPE_CHECKING:
    from ethos.training.loop import LoopResult

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
        self._attacking = False
        self.last_loss: float = 0.0

    def hold(self, model: torch.nn.Module) -> RemovableHandle:
        """Keep the word-embedding output of every clean forward pass (and, after its backward,
        its gradient) for the next :meth:`attack`, until the returned handle is removed.

        Passes without gradients (evaluation) and the attack's own passes are not kept.
        """

        def keep(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
            if self._attacking or not torch.is_grad_enabled():
                return
            if output.requires_grad:
                output.retain_grad()
            self._clean = output

        return _word_embeddings(model).register_forward_hook(keep)

    @contextmanager
    def watch(self, model: torch.nn.Module) -> Iterator[None]:
        """:meth:`hold` for the forward passes inside the ``with`` block."""
        handle = self.hold(model)
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
        self._attacking = True
        try:
            self._attack(model, batch, labels, loss_fn, clean)
        finally:
            self._attacking = False

    def _attack(
        self,
        model: torch.nn.Module,
        batch: dict[str, torch.Tensor],
        labels: torch.Tensor,
        loss_fn: LossFn,
        clean: torch.Tensor,
    ) -> None:
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


class Augmentation(Strategy):
    """``train.adversarial.augment``: each epoch trains on a fresh perturbed copy of the texts."""

    name = "augmentation"
    records = ("mitigation.adversarial",)

    def __init__(self, epoch_data: EpochData, config: AdversarialConfig) -> None:
        self.epoch_data = epoch_data
        self.config = config

    @classmethod
    def from_config(cls, config: RunConfig, train: Dataset, tokenizer: Any) -> Augmentation | None:
        adversarial = config.train.adversarial
        if adversarial is None or not adversarial.augment:
            return None
        families = list(adversarial.augment)
        fraction = adversarial.fraction
        texts, max_length = list(train.texts), config.model.max_length

        def epoch_data(epoch: int, generator: np.random.Generator) -> Encoded:
            # The loop's generator: a resumed run perturbs the same texts the same way.
            perturbed, _ = augment_texts(texts, families, fraction, generator)
            return encode(
                tokenizer, perturbed, train.text_pairs, train.labels, max_length=max_length
            )

        return cls(epoch_data, adversarial)

    def prepare(self, plan: Plan) -> None:
        plan.epoch_data = self.epoch_data

    def manifest(self) -> dict[str, Any]:
        return {"adversarial": self.config.model_dump(mode="json")}


class EmbeddingAttacks(Strategy):
    """``train.adversarial.embedding`` (fgm or pgd): after each batch's backward pass, the
    gradient of the loss at the attacked embeddings is added."""

    name = "embedding_attack"
    records = ("mitigation.adversarial",)

    def __init__(self, config: AdversarialConfig) -> None:
        self.config = config
        self.attack = EmbeddingAttack(config)
        self._held: RemovableHandle | None = None

    @classmethod
    def from_config(
        cls, config: RunConfig, train: Dataset, tokenizer: Any
    ) -> EmbeddingAttacks | None:
        adversarial = config.train.adversarial
        if adversarial is None or adversarial.embedding == "none":
            return None
        return cls(adversarial)

    def prepare(self, plan: Plan) -> None:
        self._held = self.attack.hold(plan.core)

    def after_backward(self, step: Step) -> None:
        self.attack.attack(step.model, step.batch, step.labels, step.loss_of)

    def finish(self, result: LoopResult) -> None:
        if self._held is not None:
            self._held.remove()
            self._held = None

    def manifest(self) -> dict[str, Any]:
        return {"adversarial": self.config.model_dump(mode="json")}


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
