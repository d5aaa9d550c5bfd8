"""The PostgreSQL fixture's contract: skip with the install command, but fail under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest

from pg_cluster import require_server


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ETHOS_PG_BINDIR", str(tmp_path / "nowhere"))


@pytest.mark.usefixtures("no_server")
def test_missing_server_skips_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=r"scripts/install-system-packages\.sh postgresql"
    ):
        require_server()


@pytest.mark.usefixtures("no_server")
def test_missing_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true.*install-system-packages\.sh"):
        require_server()


def test_server_answers_sql(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    assert version is not None and int(str(version[0]).split(".")[0]) >= 12
