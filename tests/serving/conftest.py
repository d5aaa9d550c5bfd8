"""Tiny finished runs for the serving tests, trained once per session.

Serving reads only a run directory, so these fixtures are the whole contract between training and
serving in the tests: ``tiny_run`` is a plain fine-tuned COMPAS classifier, ``tiny_threshold_run``
the same with per-group thresholds (equalized odds on race). Both are small (200 rows, 4 optimizer
steps, 32 tokens) so a CPU trains each in seconds; they are not meant to be good models.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import LiveServer, create_key, gated_copy, live_server

from ethos import RunConfig
from ethos.governance.card import write_card
from ethos.rundir import RunDir
from ethos.training import train


def tiny_config(output_dir: Path, **train_options: Any) -> RunConfig:
    """A tiny COMPAS config; ``train_options`` are merged into its ``train`` section."""
    return RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": 200, "min_group_size": 1},
            "model": {"max_length": 32},
            "train": {
                "epochs": 1,
                "batch_size": 16,
                "max_steps": 4,
                "learning_rate": 1e-4,
                **train_options,
            },
            "output_dir": str(output_dir),
            "seed": 5,
        }
    )


def _train(config: RunConfig) -> RunDir:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-group warnings are expected at 200 rows
        return train(config, quiet=True)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A finished plain fine-tuned run (argmax decisions)."""
    return _train(tiny_config(tmp_path_factory.mktemp("serving_run")))


@pytest.fixture(scope="session")
def tiny_threshold_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A finished run that decides with per-group thresholds on race (equalized odds)."""
    config = tiny_config(
        tmp_path_factory.mktemp("serving_threshold_run"),
        fairness={"method": "thresholds", "attribute": "race", "constraint": "equalized_odds"},
    )
    return _train(config)


# A live `ethos serve` of ``tiny_run`` (gated PASS by a permissive test policy), shared by the API
# test files: starting one costs seconds of model loading.


@pytest.fixture(scope="session")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve_api")


@pytest.fixture(scope="session")
def ledger(place: Path) -> str:
    return str(place / "ledger.db")


@pytest.fixture(scope="session")
def pass_run(tiny_run: RunDir, place: Path, ledger: str) -> RunDir:
    """Gated PASS, with its model card written after the gate (as `ethos run` does)."""
    run = gated_copy(tiny_run, place, "PASS", ledger)
    write_card(run)
    return run


@pytest.fixture(scope="session")
def server(pass_run: RunDir, place: Path, ledger: str) -> Iterator[LiveServer]:
    with live_server(pass_run, place, ledger=ledger) as live:
        yield live


@pytest.fixture(scope="session")
def keys(server: LiveServer) -> dict[str, str]:
    return {
        "predict": create_key(server.db, "predict", name="app"),
        "feedback": create_key(server.db, "feedback", name="labeller"),
        "admin": create_key(server.db, "admin", name="ops"),
        "slow": create_key(server.db, "predict", rate=3, name="rate-limited"),
    }
