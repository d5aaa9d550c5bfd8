"""The empirical privacy audit with canaries (``privacy.dp_audit``) on real tiny runs.

Two scenarios, each trained once: a non-private run that memorises its canaries (100 COMPAS rows,
64 canaries, 10 epochs at a high learning rate, 16 tokens) must give a one-run lower bound on
epsilon clearly above 1 at 95 % confidence (Steinke, Nasr & Jagielski 2023); the same recipe under
DP-SGD at epsilon = 1 must give a bound of at most 1. Each trains in ~35 s on one CPU core.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from cli_helpers import run_ethos
from ethos import RunConfig
from ethos.audit.dp_audit import NO_CANARIES, dp_audit_run
from ethos.audit.errors import AuditError
from ethos.audit.runner import audit_run
from ethos.governance.card import write_card
from ethos.governance.gate import run_documents
from ethos.governance.policy import load_policy
from ethos.governance.scorecard import score_run
from ethos.rundir import RunDir
from ethos.training import train

CANARIES = 64
CLAIM = "privacy claim survives its audit"


def canary_config(out: Path, **train_options: Any) -> RunConfig:
    """100 COMPAS rows (70 to train on) and 64 canaries, trained long enough to memorise them."""
    return RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": 100, "min_group_size": 1},
            "model": {"max_length": 16},  # a canary is 8 words: 10 tokens with [CLS] and [SEP]
            "train": {
                "epochs": 10,
                "batch_size": 16,
                "learning_rate": 5e-4,
                "warmup_ratio": 0.0,
                "canaries": {"count": CANARIES},
                **train_options,
            },
            "output_dir": str(out),
            "seed": 5,
        }
    )


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Train on one thread: on a CPU shared with other work, a batch this small trains several
    times faster than on two threads that wait for each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(config: RunConfig) -> RunDir:
    with warnings.catch_warnings(), one_torch_thread():
        warnings.simplefilter("ignore")
        return train(config, quiet=True)


@pytest.fixture(scope="module")
def memorised(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    return fit(canary_config(tmp_path_factory.mktemp("memorised")))


@pytest.fixture(scope="module")
def private_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    return fit(canary_config(tmp_path_factory.mktemp("dp"), privacy={"epsilon": 1.0}))


def test_a_run_that_memorises_its_canaries_has_epsilon_clearly_above_one(
    memorised: RunDir,
) -> None:
    section = dp_audit_run(memorised)
    assert section["applicable"] is True
    assert section["confidence"] == 0.95
    assert section["epsilon_lower_bound"] > 1.3  # measured 1.70: 32 of 32 guesses right
    assert section["canaries"] == CANARIES
    assert section["included"] == memorised.canaries().n_included
    assert 0 < section["correct"] <= section["guesses"] <= CANARIES
    assert section["k_positive"] + section["k_negative"] == section["guesses"]
    assert section["epsilon_claimed"] is None and section["claim_refuted"] is None
    assert section["delta"] == 0.0  # a non-private run is audited as pure DP
    assert section["claim"] == "none: not trained with differential privacy"
    assert section["mean_score_included"] > section["mean_score_excluded"] + 1


def test_a_dp_run_at_epsilon_one_stays_below_its_claim(private_run: RunDir) -> None:
    claim = private_run.manifest["training"]["privacy"]
    assert claim["epsilon"] <= 1.0 + 1e-6
    section = dp_audit_run(private_run)
    assert section["epsilon_lower_bound"] <= 1.0  # measured 0.0
    assert section["epsilon_claimed"] == pytest.approx(claim["epsilon"])
    assert section["delta"] == claim["delta"]
    assert section["claim_refuted"] is False


def test_canaries_are_training_rows_only(memorised: RunDir) -> None:
    canaries = memorised.canaries()
    assert canaries is not None and canaries.count == CANARIES
    recorded = memorised.manifest["canaries"]
    assert recorded["count"] == CANARIES and recorded["included"] == canaries.n_included
    assert "every other audit" in recorded["excluded_from"]
    # The manifest's data and the held-out predictions are the real rows alone.
    assert memorised.manifest["data"]["rows"] == 100
    predicted = memorised.predictions()
    assert not predicted["id"].astype(str).str.startswith("canary-").any()
    texts = set(canaries.texts)
    for part in ("train", "validation", "test"):
        assert not texts & set(memorised.dataset(part).texts)
    # The DP accountant saw them, though: the sampling rate is over real rows plus canaries.
    n_train = memorised.manifest["data"]["split_counts"]["train"]
    examples = memorised.manifest["training"]["examples_seen"]
    assert examples >= 10 * (n_train + canaries.n_included) * 0.99


def test_the_audit_nests_the_section_and_the_card_shows_both_numbers(private_run: RunDir) -> None:
    result = audit_run(private_run, checks=["privacy.dp_audit"], replace=True)
    on_disk = json.loads((result.path / "audit.json").read_text())
    section = on_disk["privacy"]["dp_audit"]
    assert section == dp_audit_run(private_run)  # deterministic, one computation
    assert "privacy.dp_audit" in on_disk["meta"]["checks"]
    assert "canary audit: ε ≥" in " ".join(on_disk["summary"]["privacy"]["reasons"])
    assert "Empirical privacy audit (canaries)" in (result.path / "report.html").read_text()
    card = Path(write_card(RunDir.open(private_run.path)).markdown).read_text()
    line = next(x for x in card.splitlines() if "Privacy claim and its audit" in x)
    assert "claimed ε ≤ 0.99" in line  # the accountant's epsilon, just under the target 1
    assert "audited ε ≥ 0.000 at 95 % confidence" in line


def test_the_medical_policy_holds_the_claim_against_its_audit(private_run: RunDir) -> None:
    audit_run(private_run, checks=["privacy.dp_audit"], replace=True)
    documents, _ = run_documents(private_run)
    card = score_run(load_policy("medical"), documents)
    found = next(c for c in card.constraints if c.label == CLAIM)
    assert found.status == "holds"
    assert found.limit == pytest.approx(private_run.manifest["training"]["privacy"]["epsilon"])
    assert found.limit_metric == "manifest.training.privacy.epsilon"


def test_asking_for_the_audit_of_a_run_without_canaries_is_an_error(
    tiny_run: RunDir, tmp_path: Path
) -> None:
    with pytest.raises(AuditError, match="needs canaries") as info:
        audit_run(tiny_run, checks=["privacy.dp_audit"], out=tmp_path / "audit")
    assert "train.canaries" in str(info.value.hint)
    assert not (tmp_path / "audit").exists()
    with pytest.raises(AuditError, match="has no canaries"):
        dp_audit_run(tiny_run)
    done = run_ethos(
        "audit", str(tiny_run.path), "--checks", "privacy.dp_audit", "--out", str(tmp_path / "x")
    )
    assert done.returncode == 2, done.stderr
    assert "needs canaries" in done.stderr and "fix:" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_canaries_the_default_audit_says_not_applicable() -> None:
    from ethos.audit.dp_audit import DpAuditCheck
    from ethos.audit.protocol import AuditContext

    section = DpAuditCheck().run(AuditContext(predict_proba=lambda texts: None))
    assert section == {"applicable": False, "reason": NO_CANARIES}
