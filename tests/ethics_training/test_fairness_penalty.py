"""The soft fairness gap and the group-balanced batches the penalty is trained on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ethos.training.fairness_penalty import fairness_penalty, group_balanced_order, soft_gap


def test_soft_demographic_parity_gap_is_the_spread_of_group_means() -> None:
    positive = torch.tensor([0.9, 0.7, 0.2, 0.4, 0.5, 0.6])
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    labels = torch.zeros(6, dtype=torch.long)
    # means: 0.8, 0.3, 0.55 -> spread 0.5
    assert float(soft_gap(positive, groups, labels, "demographic_parity")) == pytest.approx(0.5)


def test_soft_equalized_odds_gap_is_the_larger_of_the_fpr_and_tpr_spreads() -> None:
    positive = torch.tensor([0.9, 0.8, 0.1, 0.3, 0.6, 0.5, 0.4, 0.2])
    labels = torch.tensor([1, 1, 0, 0, 1, 1, 0, 0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    # TPR-like: group 0 0.85, group 1 0.55 -> 0.30; FPR-like: 0.2 vs 0.3 -> 0.10.
    gap = soft_gap(positive, groups, labels, "equalized_odds")
    assert float(gap) == pytest.approx(0.30)


def test_groups_too_small_to_have_a_rate_are_left_out() -> None:
    positive = torch.tensor([0.9, 0.7, 0.1])
    groups = torch.tensor([0, 0, 1])  # group 1 has one member: no rate
    labels = torch.zeros(3, dtype=torch.long)
    assert float(soft_gap(positive, groups, labels, "demographic_parity")) == 0.0


def test_penalty_gradient_pushes_group_rates_together() -> None:
    logits = torch.tensor([[0.0, 2.0], [0.0, 2.0], [0.0, -2.0], [0.0, -2.0]], requires_grad=True)
    term = fairness_penalty(
        np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]), constraint="demographic_parity", weight=2.0
    )
    value = term({}, logits, np.arange(4))
    value.backward()
    assert float(value.detach()) > 0
    assert logits.grad is not None
    # Descent lowers the favoured group's positive logit and raises the other's.
    assert float(logits.grad[0, 1]) > 0 and float(logits.grad[2, 1]) < 0


def test_group_balanced_batches_hold_every_sizeable_group() -> None:
    rng = np.random.default_rng(3)
    codes = np.array([0] * 600 + [1] * 300 + [2] * 90 + [3] * 10)
    rng.shuffle(codes)
    batches = group_balanced_order(codes, 32, np.random.default_rng(5))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(codes)))  # every example once per epoch
    full = [b for b in batches if len(b) == 32]
    for batch in full:
        present = set(codes[batch].tolist())
        assert {0, 1, 2} <= present  # groups with >= n / batch_size members: every batch
    appearances = sum(3 in set(codes[b].tolist()) for b in batches)
    assert appearances == 10  # the small group is spread out, one member per batch


def test_group_balanced_order_is_seeded() -> None:
    codes = np.repeat([0, 1], 50)
    a = group_balanced_order(codes, 10, np.random.default_rng(1))
    b = group_balanced_order(codes, 10, np.random.default_rng(1))
    c = group_balanced_order(codes, 10, np.random.default_rng(2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
