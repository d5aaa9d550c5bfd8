"""Shared test set-up: offline hub, throwaway databases, and a throwaway PostgreSQL server.

The server is a real PostgreSQL cluster (see ``pg_cluster.py``), started once per session when a
test first asks for ``postgres_url`` and removed afterwards. Without the server binaries the
PostgreSQL tests are skipped with the command that installs them, except under ``CI=true``, where
a missing server fails the run: CI must actually test PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator

import pytest

from ethos.rundir import RunDir
from pg_cluster import require_server, running_cluster
from run_fixtures import (
    tiny_compas_config,
    tiny_grounded_config,
    tiny_grounded_files,
    tiny_lora_config,
    tiny_qa_config,
    train_quietly,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Tests never write to the user's own ledger (~/.ethos/ledger.db): commands that record a decision
# without --ledger use a throwaway one.
os.environ.setdefault(
    "ETHOS_LEDGER_URL", os.path.join(tempfile.mkdtemp(prefix="ethos-test-ledger-"), "ledger.db")
)
# ... nor to the user's own serving store (~/.ethos/serving.db: API keys, prediction log).
os.environ.setdefault(
    "ETHOS_SERVING_DB",
    os.path.join(tempfile.mkdtemp(prefix="ethos-test-serving-"), "serving.db"),
)

_database_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A running throwaway PostgreSQL server; yields its base URL (no database name)."""
    with running_cluster(require_server()) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the throwaway server, dropped after the test."""
    import psycopg

    name = f"ethos_test_{os.getpid()}_{next(_database_counter)}"
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Finished tiny runs, trained once per session and shared by every module that needs one
# (serving, the run model, LoRA, QA, the audit of thresholds). Tests must not modify them; a
# test that changes a run works on a copy.


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A finished plain fine-tuned COMPAS run (argmax decisions)."""
    return train_quietly(tiny_compas_config(tmp_path_factory.mktemp("tiny_run")))


@pytest.fixture(scope="session")
def tiny_threshold_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """The same, deciding with per-group thresholds on race (equalized odds)."""
    fairness = {"method": "thresholds", "attribute": "race", "constraint": "equalized_odds"}
    config = tiny_compas_config(tmp_path_factory.mktemp("tiny_threshold_run"), fairness=fairness)
    return train_quietly(config)


@pytest.fixture(scope="session")
def tiny_lora_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A finished LoRA run: ``model/`` holds the adapter and head, not the base weights."""
    return train_quietly(tiny_lora_config(tmp_path_factory.mktemp("tiny_lora_run")))


@pytest.fixture(scope="session")
def tiny_grounded_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A finished grounded PubMedQA reader over a 120-abstract knowledge base (its config's
    grounding.knowledge_base); questions that the squad-tiny set should make it abstain on."""
    folder = tmp_path_factory.mktemp("tiny_grounded_run")
    data, kb = tiny_grounded_files(folder)
    return train_quietly(
        tiny_grounded_config(folder / "runs", data, kb, out_of_domain="squad-tiny")
    )


@pytest.fixture(scope="session")
def tiny_qa_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A finished extractive-QA run on the bundled tiny SQuAD file."""
    return train_quietly(tiny_qa_config(tmp_path_factory.mktemp("tiny_qa_run")))
