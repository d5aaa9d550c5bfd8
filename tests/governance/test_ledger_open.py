"""Opening a ledger: where it lives, and clear errors when it cannot be opened."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ethos.errors import EthosError
from ethos.governance import Ledger, LedgerError


def _closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_default_location_is_home_ethos_ledger_db(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with Ledger.open() as ledger:
        ledger.append(kind="run", actor="me")
        assert ledger.url.endswith(f"{tmp_path}/.ethos/ledger.db")
    assert (tmp_path / ".ethos" / "ledger.db").is_file()


def test_url_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ETHOS_LEDGER_URL", f"sqlite:///{tmp_path}/env.db")
    with Ledger.open() as ledger:
        ledger.append(kind="run", actor="me")
    assert (tmp_path / "env.db").is_file()


def test_postgres_url_without_driver_means_psycopg(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with Ledger.open(plain) as ledger:
        ledger.append(kind="run", actor="me")
        assert ledger.url.startswith("postgresql+psycopg://")
        assert len(ledger) == 1


def test_nothing_listening_names_the_url_with_the_password_masked() -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://auditor:s3cret-pw@127.0.0.1:{port}/ledger"
    with pytest.raises(LedgerError) as caught:
        Ledger.open(url)
    message = str(caught.value)
    assert (
        f"cannot connect to the ledger database postgresql+psycopg://auditor:***@127.0.0.1:{port}/ledger"
        in message
    )
    assert "s3cret-pw" not in message
    assert "check that the server is running" in message
    assert isinstance(caught.value, EthosError)


def test_unknown_host_is_a_clear_error() -> None:
    with pytest.raises(LedgerError, match=r"cannot connect to .*no-such-host\.invalid"):
        Ledger.open("postgresql+psycopg://u:pw@no-such-host.invalid:5432/db")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://u:topsecret@host:notaport/db", "is not a database URL"),
        ("mysql://u:topsecret@host/db", "uses the backend 'mysql'"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("postgresql+nosuchdriver://u:topsecret@host/db", "no database driver"),
    ],
)
def test_garbage_urls_are_refused_clearly(url: str, expected: str) -> None:
    with pytest.raises(LedgerError) as caught:
        Ledger.open(url)
    message = str(caught.value)
    assert expected in message
    assert "topsecret" not in message
    assert "fix:" in message and "--url" in message


def test_sqlite_path_under_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match="cannot create the directory for the ledger"):
        Ledger.open(blocker / "sub" / "ledger.db")


def test_sqlite_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="is a directory"):
        Ledger.open(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to any directory")
def test_unwritable_sqlite_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(LedgerError, match="is not writable"):
            Ledger.open(locked / "ledger.db")
    finally:
        locked.chmod(0o700)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(
        LedgerError, match=r"cannot open the SQLite ledger .*notes\.db: file is not a database"
    ):
        Ledger.open(path)


def test_empty_hmac_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ETHOS_LEDGER_HMAC_KEY", "")
    with pytest.raises(LedgerError, match=r"ETHOS_LEDGER_HMAC_KEY is set but empty"):
        Ledger.open(tmp_path / "l.db")
