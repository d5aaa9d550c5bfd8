"""Augmentation with the audit's perturbations, and the size of embedding-space attacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ethos import ConfigError
from ethos.config import AdversarialConfig
from ethos.training.adversarial import (
    EmbeddingAttack,
    _project,
    _scaled,
    augment_texts,
    augmentation_families,
    check_families,
)

TEXTS = [f"The defendant is a {20 + i} year old man charged with a felony." for i in range(400)]


def test_augmentation_perturbs_about_the_fraction_asked() -> None:
    out, changed = augment_texts(TEXTS, ["char_keyboard", "casing"], 0.5, np.random.default_rng(0))
    assert len(out) == len(TEXTS)
    differing = sum(a != b for a, b in zip(out, TEXTS, strict=True))
    assert differing == changed
    assert 150 < changed < 250


def test_gender_swap_augmentation_changes_pronoun_words() -> None:
    out, changed = augment_texts(TEXTS[:20], ["gender_swap"], 1.0, np.random.default_rng(0))
    assert changed == 20
    assert all(" woman " in text for text in out)


def test_augmentation_is_seeded_and_unknown_families_are_refused() -> None:
    a, _ = augment_texts(TEXTS, ["word_dropout"], 0.3, np.random.default_rng(9))
    b, _ = augment_texts(TEXTS, ["word_dropout"], 0.3, np.random.default_rng(9))
    assert a == b
    assert "char_keyboard" in augmentation_families()
    with pytest.raises(ConfigError, match=r"(?s)unknown perturbation families.*choose from"):
        check_families(["typos", "casing"])


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(20, 4)
        self.head = torch.nn.Linear(4, 2)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embed

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(input_ids) * attention_mask.unsqueeze(-1)
        return self.head(hidden.mean(dim=1))


@pytest.mark.parametrize("kind", ["fgm", "pgd"])
def test_attack_adds_gradient_from_a_perturbation_of_the_asked_size(kind: str) -> None:
    torch.manual_seed(0)
    model = _Tiny()
    batch = {
        "input_ids": torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]),
    }
    labels = torch.tensor([0, 1])
    attack = EmbeddingAttack(AdversarialConfig(embedding=kind, epsilon=0.5, steps=3))

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(out, y)

    with attack.watch(model):
        clean = loss_fn(model(**batch), labels)
    clean.backward()
    clean_grad = model.head.weight.grad.clone()  # type: ignore[union-attr]
    attack.attack(model, batch, labels, loss_fn)
    assert attack.last_loss > float(clean.detach())  # the perturbation raised the loss
    assert not torch.equal(model.head.weight.grad, clean_grad)  # and added its gradient


def test_perturbations_have_the_asked_norm_per_example() -> None:
    direction = torch.randn(3, 5, 4)
    direction[2] = 0.0
    scaled = _scaled(direction, 0.7)
    norms = scaled.flatten(1).norm(dim=1)
    assert norms[:2].tolist() == pytest.approx([0.7, 0.7], abs=1e-6)
    assert float(norms[2]) == 0.0  # nothing to push along stays put
    projected = _project(direction * 10, 1.0)
    assert projected.flatten(1).norm(dim=1)[:2].tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    inside = _project(direction * 1e-3, 1.0)
    assert torch.allclose(inside, direction * 1e-3)
