"""Where an ethos database lives and how it is opened, shared by the ledger and the serving store.

Both keep their tables in SQLite (a file, the default) or PostgreSQL (by URL), take the location
from an option, else an environment variable, else a file under ``~/.ethos/``, and describe every
failure in the user's terms with the password masked. :class:`Role` names the caller so the same
code can say "the ledger" or "the serving store".

SQLite engines run in WAL mode (readers continue while one writer writes) with a long busy
timeout, and ethos issues ``BEGIN`` itself so a write transaction can take the write lock up
front (:func:`for_writing`, ``BEGIN IMMEDIATE``): a plain ``BEGIN`` reads first and then races
for the lock, which SQLite answers with "database is locked" instead of waiting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from ethos.errors import EthosError

try:
    from sqlalchemy import Connection, Engine, create_engine, event
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise EthosError(
        "ethos's databases (the ledger, the serving store) need SQLAlchemy, which is not installed",
        hint="pip install 'ethos[governance]'",
    ) from exc

E = TypeVar("E", bound=EthosError)

_SQLITE_BEGIN_OPTION = "ethos_sqlite_begin"
_SQLITE_BUSY_MS = 60_000


@dataclass(frozen=True)
class Role(Generic[E]):
    """Who uses a database: the words its messages use, where it lives by default, what it raises.

    ``noun`` reads after "the" ("ledger" gives "the ledger", "the SQLite ledger", "the ledger
    database"); ``option`` is the command-line option that sets the location.
    """

    noun: str
    env: str
    default_path: Path
    error: type[E]
    option: str = "--url"

    @property
    def hint(self) -> str:
        """The one fix every location error suggests."""
        return (
            f"pass {self.option} (or set ${self.env}) to a writable SQLite file path, "
            "sqlite:///PATH, or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
        )


def mask(url: str | URL) -> str:
    """The URL as it may be printed: the password (if any) replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def resolve_url(url: str | Path | None, role: Role[Any]) -> URL:
    """The database URL: ``url``, else ``$<role.env>``, else ``role.default_path``.

    A bare path means a SQLite file; its directory is created. ``postgresql://`` without a driver
    means psycopg 3 (the driver ethos installs), not SQLAlchemy's default psycopg2. In-memory
    SQLite is refused: other processes (the CLI, other workers) could not see it.
    """
    if url is None or (isinstance(url, str) and not url.strip()):
        url = os.environ.get(role.env) or role.default_path
    if isinstance(url, Path) or "://" not in url:
        return _sqlite_file_url(Path(url), role)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise role.error(f"'{mask(url)}' is not a database URL", hint=role.hint) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise role.error(
                f"'{mask(parsed)}' is an in-memory SQLite database, which other processes "
                "cannot see and which vanishes on exit",
                hint=role.hint,
            )
        return _sqlite_file_url(Path(database), role)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    raise role.error(
        f"'{mask(parsed)}' uses the backend '{backend}'; the {role.noun} supports SQLite and "
        "PostgreSQL",
        hint=role.hint,
    )


def _sqlite_file_url(path: Path, role: Role[Any]) -> URL:
    path = path.expanduser().absolute()
    if path.is_dir():
        raise role.error(f"the {role.noun} path {path} is a directory", hint=role.hint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise role.error(
            f"cannot create the directory for the {role.noun} {path}: {exc.strerror or exc}",
            hint=role.hint,
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        # SQLite needs to create journal files next to the database, not only write the file.
        raise role.error(
            f"cannot write the {role.noun} {path}: its directory {path.parent} is not writable",
            hint=role.hint,
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise role.error(
            f"cannot write the {role.noun} {path}: the file is not readable and writable",
            hint=f"fix the file's permissions (chmod u+rw {path}) or {role.hint}",
        )
    return URL.create("sqlite+pysqlite", database=str(path))


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine is SQLite (the other supported backend is PostgreSQL)."""
    return engine.dialect.name == "sqlite"


def make_engine(url: URL, role: Role[Any]) -> Engine:
    """An engine with each backend's locking behaviour set up (see the module docstring)."""
    try:
        if url.get_backend_name() == "sqlite":
            engine = create_engine(url)
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        # No pre-ping (a round trip per transaction): a dropped connection fails the attempt and
        # the pool discards it; callers that must not lose a write retry on a fresh one.
        return create_engine(url, connect_args={"connect_timeout": 10})
    except (NoSuchModuleError, ImportError) as exc:
        raise role.error(
            f"no database driver for '{mask(url)}': {exc}",
            hint=f"{role.hint} (psycopg 3 comes with ethos[governance])",
        ) from None


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module so BEGIN is ours to issue.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def for_writing(conn: Connection) -> Connection:
    """Mark a connection so its next transaction takes the write lock up front (SQLite)."""
    if conn.dialect.name == "sqlite":
        conn.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    return conn


def for_snapshot(conn: Connection) -> Connection:
    """Mark a connection so all its reads see one snapshot (PostgreSQL; SQLite always does)."""
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def connection_error(url: URL, exc: DBAPIError, role: Role[E]) -> E:
    """A DBAPI failure to reach or open the database, said in the user's terms."""
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    if url.get_backend_name() == "sqlite":
        return role.error(
            f"cannot open the SQLite {role.noun} {url.database}: {detail}", hint=role.hint
        )
    return role.error(
        f"cannot connect to the {role.noun} database {mask(url)}: {detail}",
        hint="check that the server is running and reachable, and that the user, password and "
        f"database in the URL are right; {role.hint}",
    )
