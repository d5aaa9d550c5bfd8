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

from pg_cluster import require_server, running_cluster

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
