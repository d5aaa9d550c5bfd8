"""A live `ethos serve` of the shared tiny run, for the serving tests.

Serving reads only a run directory, so the session runs of ``tests/conftest.py`` (``tiny_run``,
``tiny_threshold_run``) are the whole contract between training and serving in these tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import LiveServer, create_key, gated_copy, live_server

from ethos.governance.card import write_card
from ethos.rundir import RunDir
from ethos.serving.store import ServingStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's own serving store lives (SQLite)."""
    return tmp_path / "serving.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[ServingStore]:
    """A fresh serving store for one test, closed after it."""
    with ServingStore(db_path) as opened:
        yield opened


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
