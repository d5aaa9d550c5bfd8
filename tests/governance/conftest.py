"""Fixtures for the ledger tests: a throwaway PostgreSQL server and per-test ledger URLs.

The server is a real PostgreSQL cluster (``initdb`` into a temporary directory, listening on
127.0.0.1 on a free port), started once per session and removed afterwards. Without the server
binaries the PostgreSQL tests are skipped with the command that installs them, except under
``CI=true``, where a missing server fails the run: CI must actually test PostgreSQL.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL_HINT = "run `scripts/install-system-packages.sh postgresql` (as root) to install them"
_database_counter = itertools.count()


def _unavailable(reason: str) -> None:
    """Skip, or fail when CI=true (a missing PostgreSQL must not pass silently there)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def _server_bindir() -> Path | None:
    """The directory with initdb/pg_ctl: $ETHOS_PG_BINDIR, Debian's versioned dir, or PATH."""
    candidates = [os.environ.get("ETHOS_PG_BINDIR", "")]
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    initdb = shutil.which("initdb")
    candidates.append(str(Path(initdb).parent) if initdb else "")
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).exists() for tool in ("initdb", "pg_ctl")):
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; as root, run its tools as the `postgres` user."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *argv]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in argv)]


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A running throwaway PostgreSQL server; yields its base URL (no database name)."""
    bindir = _server_bindir()
    if bindir is None:
        _unavailable(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")
    assert bindir is not None
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable(f"running as root but there is no `postgres` user; {INSTALL_HINT}")
    root = Path(tempfile.mkdtemp(prefix="ethos-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        os.chown(root, server_user.pw_uid, server_user.pw_gid)
    port = _free_port()
    pg_ctl = str(bindir / "pg_ctl")
    started = False
    try:
        _run(
            _as_server_user(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--no-sync", "--no-instructions"]
            ),
            "initdb",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        _run(
            _as_server_user(
                [pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]
            ),
            "pg_ctl start",
        )
        started = True
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    except RuntimeError as exc:
        log_text = log.read_text(errors="replace") if log.exists() else ""
        pytest.fail(f"could not start a throwaway PostgreSQL: {exc}\n{log_text}", pytrace=False)
    finally:
        if started:
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


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
