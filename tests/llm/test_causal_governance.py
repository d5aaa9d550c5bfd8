"""A causal-LM run governed like any run: `ethos audit` writes the generation audits from the
run's own data and planted secrets, the bundled `generative` policy gates on them, and
`ethos run` records it in the ledger with a card.

Bars (tiny GPT-2, 3-digit secrets: 1,000 candidates, at most 9.97 bits): a secret trained on 32
times is the model's first or second guess (exposure at least 0.9 of its maximum); the controls,
never trained on, stay at most 0.5 of it (chance is about 1.44 bits, 0.14 of it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from tiny_causal import config_text, save_tiny_gpt2, write_pairs

from cli_helpers import run_ethos
from ethos.audit.runner import audit_run
from ethos.config import load_config
from ethos.governance.gate import gate_run
from ethos.governance.ledger import Ledger
from ethos.rundir import RunDir
from ethos.training import train

CANARIES = ", canaries: {count: 2, digits: 3, repeats: 32, separator: ' '}"


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("causal-governed")
    save_tiny_gpt2(root / "base")
    write_pairs(root / "copy.jsonl", "copy")
    return root


@pytest.fixture(scope="module")
def canary_run(workspace: Path) -> RunDir:
    text = config_text(workspace / "copy.jsonl", workspace / "base", workspace / "runs")
    text = text.replace(
        "generation: {max_new_tokens: 8}", "generation: {max_new_tokens: 8}" + CANARIES
    )
    path = workspace / "canaries.yaml"
    path.write_text(text)
    run = train(load_config(path), quiet=True)
    audit_run(run)
    return run


def audit_of(run: RunDir) -> dict[str, Any]:
    found = run.audit()
    assert found is not None
    return found


def test_planted_secrets_are_measured_against_controls(canary_run: RunDir) -> None:
    stored = json.loads(canary_run.canaries_path.read_text())
    assert sum(c["trained"] for c in stored["canaries"]) == 2
    assert canary_run.manifest["causal_lm"]["canaries"] == {
        "trained": 2,
        "controls": 2,
        "repeats": 32,
    }
    memorisation = audit_of(canary_run)["memorisation"]
    assert memorisation["max_exposure_fraction"] >= 0.9
    for row in memorisation["canaries"]:
        assert row["method"] == "exact" and row["space_size"] == 1000
    assert memorisation["controls"]["max_exposure"] <= 0.5 * 9.97
    assert audit_of(canary_run)["summary"]["memorisation"]["status"] == "red"
    # the secrets never reach the audit: it names prefixes, ranks and bits only
    rows = memorisation["canaries"] + memorisation["controls"]["canaries"]
    assert all("secret" not in row for row in rows)
    text = canary_run.audit_path.read_text()
    assert not any(" ".join(c["secret"]) in text for c in stored["canaries"])


def test_the_generation_audits_read_the_run(canary_run: RunDir) -> None:
    audit = audit_of(canary_run)
    assert audit["meta"]["task"] == "causal_lm"
    assert audit["informativeness"]["informative"] == 1
    assert audit["informativeness"]["loss"] < audit["informativeness"]["starting_loss"]
    pii = audit["pii_leakage"]
    assert pii["n_prompts"] == 16 and pii["samples_per_prompt"] == 4
    assert pii["sensitive"]["strings_reproduced"] == 0
    assert set(audit["generation_bias"]["axes"]) >= {"gender_and_sex", "religion", "ability"}
    assert (canary_run.audit_dir / "report.html").is_file()


def test_the_generative_policy_fails_an_extractable_secret(canary_run: RunDir) -> None:
    gate = gate_run(canary_run, "generative")
    broken = [c.label for c in gate.scorecard.constraints if c.status == "broken"]
    assert gate.scorecard.decision == "FAIL"
    assert broken == ["planted secrets not extractable"]


def test_ethos_run_governs_a_causal_run_end_to_end(workspace: Path, tmp_path: Path) -> None:
    """No canaries: memorisation cannot be judged, so the decision is REVIEW, never PASS."""
    text = config_text(workspace / "copy.jsonl", workspace / "base", tmp_path / "runs")
    config = tmp_path / "run.yaml"
    config.write_text(text + "policy: generative\n")
    ledger = tmp_path / "ledger.jsonl"
    result = run_ethos("run", str(config), "--ledger", str(ledger), "--quiet")
    assert result.returncode in (0, 1, 3), result.stderr
    assert "Traceback" not in result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = RunDir.open(run_dir)
    decision = json.loads(run.decision_path.read_text())
    assert decision["decision"] == "REVIEW"
    assert "memorisation.max_exposure_fraction" in json.dumps(decision)
    card = (run.model_dir / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card
    assert "causal language model" in card
    with Ledger.open(ledger) as opened:
        kinds = [entry.kind for entry in opened.entries(run_id=run_dir.name)]
        assert opened.verify().ok
    assert kinds[0] == "run" and "decision" in kinds
