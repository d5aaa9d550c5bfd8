"""Fixtures for the ledger tests: a throwaway PostgreSQL server and per-test ledger URLs.

The server is a real PostgreSQL cluster (see ``pg_cluster.py``), started once per session and
removed afterwards. Without the server binaries the PostgreSQL tests are skipped with the command
that installs them, except under ``CI=true``, where a missing server fails the run: CI must
actually test PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import require_server, running_cluster

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

    name = f"ethos_ledger_{os.getpid()}_{next(_database_counter)}"
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend a parametrised ledger test runs on."""
    return str(request.param)


@pytest.fixture
def ledger_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty ledger location on ``backend``: a SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return str(tmp_path / "ledger.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(autouse=True)
def _no_ledger_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without a ledger URL or signing key from the environment."""
    monkeypatch.delenv("ETHOS_LEDGER_HMAC_KEY", raising=False)
    monkeypatch.delenv("ETHOS_LEDGER_URL", raising=False)
