"""A privacy engine that leaves one layer out is caught by the canary audit and FAILs the gate.

The constructed bug: a DP run at epsilon 1 whose book-keeping engine skips the word-embedding
table (no norm, no clipping, no noise) while the table still trains on its plain gradient. Each
canary is 8 random words, so the rows of its words carry what the model learns about it: the
skipped layer is exactly where the canary signal lives. The accountant still reports epsilon <= 1
(it cannot see the bug); the audit's lower bound exceeds it, and the medical policy's hard
constraint ``privacy.dp_audit.epsilon_lower_bound <= manifest.training.privacy.epsilon`` turns
the decision to FAIL.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from test_dp_audit import CLAIM, canary_config, one_torch_thread

from ethos.audit.dp_audit import dp_audit_run
from ethos.audit.runner import audit_run
from ethos.governance.gate import run_documents
from ethos.governance.policy import load_policy
from ethos.governance.scorecard import score_run
from ethos.rundir import RunDir
from ethos.training import book_keeping, train
from ethos.training.privacy import PrivateTraining

pytestmark = pytest.mark.slow  # a leaky DP run trained for the module: ~50 s; make test-slow

SKIPPED = "word_embeddings"


@pytest.fixture(scope="module")
def leaky_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """Epsilon 1 claimed; the word-embedding table trained outside the privacy engine."""
    patch = pytest.MonkeyPatch()
    layers = book_keeping._trained_layers
    patch.setattr(
        book_keeping,
        "_trained_layers",
        lambda model: [x for x in layers(model) if not x.name.endswith(SKIPPED)],
    )
    private_gradients = PrivateTraining.private_gradients

    def leaky(self: PrivateTraining, per_example: torch.Tensor) -> None:
        table = next(p for n, p in self.module.named_parameters() if SKIPPED in n)
        (plain,) = torch.autograd.grad(per_example.mean(), [table], retain_graph=True)
        private_gradients(self, per_example)
        table.grad = plain  # the bug: no clipping, no noise for this layer

    patch.setattr(PrivateTraining, "private_gradients", leaky)
    config = canary_config(
        tmp_path_factory.mktemp("leaky"),
        privacy={"epsilon": 1.0, "freeze_embeddings": False},
        learning_rate=2e-3,
    )
    try:
        with warnings.catch_warnings(), one_torch_thread():
            warnings.simplefilter("ignore")
            return train(config, quiet=True)
    finally:
        patch.undo()


def test_the_accountant_cannot_see_the_skipped_layer(leaky_run: RunDir) -> None:
    privacy = leaky_run.manifest["training"]["privacy"]
    assert privacy["epsilon"] <= 1.0 + 1e-6 and privacy["frozen_for_privacy"] == []


def test_the_audit_refutes_the_claim_and_the_medical_gate_fails_the_run(
    leaky_run: RunDir, tmp_path: Path
) -> None:
    section = dp_audit_run(leaky_run)
    claimed = leaky_run.manifest["training"]["privacy"]["epsilon"]
    assert section["epsilon_lower_bound"] > claimed, section  # measured 2.42 (64 of 64 right)
    assert section["claim_refuted"] is True
    audit_run(leaky_run, checks=["privacy.dp_audit"], replace=True)
    documents, _ = run_documents(leaky_run)
    card = score_run(load_policy("medical"), documents)
    found = next(c for c in card.constraints if c.label == CLAIM)
    assert found.status == "broken"
    assert card.decision == "FAIL"
