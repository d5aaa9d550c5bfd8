"""A throwaway PostgreSQL cluster for tests: find the server, start it, stop and remove it.

Kept out of conftest.py so its skip-or-fail rule can be tested directly.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

INSTALL_HINT = "run `scripts/install-system-packages.sh postgresql` (as root) to install them"
BINDIR_ENV = "ETHOS_PG_BINDIR"


def unavailable(reason: str) -> None:
    """Skip, or fail when CI=true (a missing PostgreSQL must not pass silently there)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def server_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: ``$ETHOS_PG_BINDIR`` when set (and only it),
    else the newest Debian ``/usr/lib/postgresql/*/bin``, else wherever PATH finds initdb."""
    if os.environ.get(BINDIR_ENV):
        candidates = [os.environ[BINDIR_ENV]]
    else:
        candidates = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"),
            key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
            reverse=True,
        )
        initdb = shutil.which("initdb")
        if initdb:
            candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl")):
            return Path(candidate)
    return None


def require_server() -> Path:
    """The server's bindir, or skip (fail under CI) saying how to install it."""
    bindir = server_bindir()
    if bindir is None:
        where = os.environ.get(BINDIR_ENV) or "/usr/lib/postgresql/*/bin or PATH"
        unavailable(
            f"PostgreSQL server binaries (initdb, pg_ctl) not found in {where}; {INSTALL_HINT}"
        )
    assert bindir is not None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable(
                f"running as root but there is no `postgres` user to run the server; {INSTALL_HINT}"
            )
    return bindir


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


@contextmanager
def running_cluster(bindir: Path) -> Iterator[str]:
    """initdb into a temporary directory, start on 127.0.0.1:<free port> with trust auth and the
    socket in that directory; yield the base URL (user postgres, no database); stop and delete."""
    root = Path(tempfile.mkdtemp(prefix="ethos-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        server_user = pwd.getpwnam("postgres")
        os.chown(root, server_user.pw_uid, server_user.pw_gid)
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
        port = _free_port()
        # fsync off: the cluster is thrown away, and the tests are about locking, not disks.
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


def refuse_connections(postgres_url: str, *, allow: bool) -> None:
    """Make a database disappear (no new connections, the open ones ended) or come back: what a
    server sees when its database host goes away mid-run."""
    import psycopg

    name = postgres_url.rsplit("/", 1)[1]
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
