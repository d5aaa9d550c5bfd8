"""Fixtures for the ledger tests: per-test ledger URLs on SQLite and PostgreSQL.

The throwaway PostgreSQL server (``postgres_server``, ``postgres_url``) is shared with other
suites and lives in ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


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
