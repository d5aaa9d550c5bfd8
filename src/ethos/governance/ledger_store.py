"""Where the ledger lives: URL resolution, engines, tables and write locking for both backends.

SQLite (a file, the default) and PostgreSQL (by URL) get the same tables. Appends serialise on
one lock so concurrent processes never fork the chain:

* SQLite: every write transaction starts with ``BEGIN IMMEDIATE``, which takes the database's
  single write lock before the head is read (a plain ``BEGIN`` would read first and then race
  for the lock). WAL mode lets readers continue while a writer holds it.
* PostgreSQL: the writer locks the single head row with ``SELECT ... FOR UPDATE``; a second
  writer blocks there and, under READ COMMITTED, re-reads the head its predecessor committed.

Behind both, ``seq`` is the primary key and ``prev_hash`` / ``entry_hash`` are unique, so even a
writer that bypassed the lock could not commit a fork. Triggers refuse UPDATE and DELETE on the
entries table, so an accident cannot edit history; someone with DDL rights can drop them, which
is what hashes and signatures are for.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ethos.governance.ledger_errors import LedgerError

try:
    from sqlalchemy import (
        BigInteger,
        CheckConstraint,
        Column,
        Connection,
        Engine,
        Index,
        Integer,
        MetaData,
        String,
        Table,
        Text,
        create_engine,
        event,
        inspect,
        select,
        text,
    )
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise LedgerError(
        "the ledger needs SQLAlchemy, which is not installed",
        hint="pip install 'ethos[governance]'",
    ) from exc

URL_ENV = "ETHOS_LEDGER_URL"
DEFAULT_PATH = Path("~/.ethos/ledger.db")
URL_HINT = (
    f"pass --url (or set ${URL_ENV}) to a writable SQLite file path, sqlite:///PATH, or "
    "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
)

# SQLite's INTEGER PRIMARY KEY is its 64-bit rowid; BIGINT elsewhere.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")
MAX_FIELD_CHARS = (
    255  # longest accepted free-text field (ids, hashes, fingerprints, actor, decision)
)

metadata = MetaData()

entries_table = Table(
    "ethos_ledger_entries",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(MAX_FIELD_CHARS), nullable=False),
    Column("run_id", String(MAX_FIELD_CHARS)),
    Column("dataset_fingerprint", String(MAX_FIELD_CHARS)),
    Column("config_hash", String(MAX_FIELD_CHARS)),
    Column("model_hash", String(MAX_FIELD_CHARS)),
    Column("audit_digest", String(MAX_FIELD_CHARS)),
    Column("decision", String(MAX_FIELD_CHARS)),
    Column("created_at", String(32), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("entry_hash", String(64), nullable=False, unique=True),
    Column("signature", String(64)),
    Index("ix_ethos_ledger_entries_run_id", "run_id"),
    Index("ix_ethos_ledger_entries_kind", "kind"),
)

# One row (id = 1): the seq and hash of the newest entry. Writers lock it; verification compares
# it with the chain's end, which is how a deleted last entry is noticed.
head_table = Table(
    "ethos_ledger_head",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=False),
    Column("seq", _SEQ, nullable=False),
    Column("entry_hash", String(64), nullable=False),
    Column("signature", String(64)),
    CheckConstraint("id = 1", name="ck_ethos_ledger_head_single_row"),
)

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS ethos_ledger_no_update BEFORE UPDATE ON ethos_ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'the ethos ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS ethos_ledger_no_delete BEFORE DELETE ON ethos_ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'the ethos ledger is append-only'); END",
)
_POSTGRES_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION ethos_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the ethos ledger is append-only'; END $$",
    "CREATE OR REPLACE TRIGGER ethos_ledger_no_change BEFORE UPDATE OR DELETE ON "
    "ethos_ledger_entries FOR EACH ROW EXECUTE FUNCTION ethos_ledger_append_only()",
)
# Serialises schema creation across processes on PostgreSQL (any constant; "ethos" in ASCII).
_SCHEMA_LOCK_KEY = 0x6574686F73
_SQLITE_BEGIN_OPTION = "ethos_sqlite_begin"
_SQLITE_BUSY_MS = 60_000


def mask(url: str | URL) -> str:
    """The URL as it may be printed: the password (if any) replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def resolve_url(url: str | Path | None) -> URL:
    """The database URL: ``url``, else ``$ETHOS_LEDGER_URL``, else ``~/.ethos/ledger.db``.

    A bare path means a SQLite file; its directory is created. ``postgresql://`` without a driver
    means psycopg 3 (the driver ethos installs), not SQLAlchemy's default psycopg2.
    """
    if url is None or (isinstance(url, str) and not url.strip()):
        url = os.environ.get(URL_ENV) or DEFAULT_PATH
    if isinstance(url, Path) or "://" not in url:
        return _sqlite_file_url(Path(url))
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise LedgerError(f"'{mask(url)}' is not a database URL", hint=URL_HINT) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise LedgerError(
                f"'{mask(parsed)}' is an in-memory SQLite database, which other processes "
                "cannot see and which vanishes on exit",
                hint=URL_HINT,
            )
        return _sqlite_file_url(Path(database))
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    raise LedgerError(
        f"'{mask(parsed)}' uses the backend '{backend}'; the ledger supports SQLite and PostgreSQL",
        hint=URL_HINT,
    )


def _sqlite_file_url(path: Path) -> URL:
    path = path.expanduser().absolute()
    if path.is_dir():
        raise LedgerError(f"the ledger path {path} is a directory", hint=URL_HINT)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(
            f"cannot create the directory for the ledger {path}: {exc.strerror or exc}",
            hint=URL_HINT,
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        # SQLite needs to create journal files next to the database, not only write the file.
        raise LedgerError(
            f"cannot write the ledger {path}: its directory {path.parent} is not writable",
            hint=URL_HINT,
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise LedgerError(
            f"cannot write the ledger {path}: the file is not readable and writable",
            hint=f"fix the file's permissions (chmod u+rw {path}) or {URL_HINT}",
        )
    return URL.create("sqlite+pysqlite", database=str(path))


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine is SQLite (the other supported backend is PostgreSQL)."""
    return engine.dialect.name == "sqlite"


def make_engine(url: URL) -> Engine:
    """An engine with each backend's locking behaviour set up (see the module docstring)."""
    try:
        if url.get_backend_name() == "sqlite":
            engine = create_engine(url)
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        # No pre-ping (a round trip per append): a dropped connection fails the attempt, the pool
        # discards it, and Ledger.append retries on a fresh one.
        return create_engine(url, connect_args={"connect_timeout": 10})
    except (NoSuchModuleError, ImportError) as exc:
        raise LedgerError(
            f"no database driver for '{mask(url)}': {exc}",
            hint=f"{URL_HINT} (psycopg 3 comes with ethos[governance])",
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


def ensure_schema(engine: Engine, genesis_hash: str) -> None:
    """Create the tables, triggers and head row if missing; safe when processes race to do it."""
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        if {entries_table.name, head_table.name} <= names:
            return
        conn.rollback()
        with for_writing(conn).begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
            existed = set(inspect(conn).get_table_names())
            metadata.create_all(conn)
            if entries_table.name not in existed:
                triggers = _SQLITE_TRIGGERS if is_sqlite(engine) else _POSTGRES_TRIGGERS
                for statement in triggers:
                    conn.exec_driver_sql(statement)
            if head_table.name not in existed:
                conn.execute(
                    head_table.insert().values(id=1, seq=0, entry_hash=genesis_hash, signature=None)
                )


def connection_error(url: URL, exc: DBAPIError) -> LedgerError:
    """A DBAPI failure to reach or open the database, said in the user's terms."""
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    if url.get_backend_name() == "sqlite":
        return LedgerError(f"cannot open the SQLite ledger {url.database}: {detail}", hint=URL_HINT)
    return LedgerError(
        f"cannot connect to the ledger database {mask(url)}: {detail}",
        hint="check that the server is running and reachable, and that the user, password and "
        f"database in the URL are right; {URL_HINT}",
    )


def head_row(conn: Connection, *, lock: bool) -> Any:
    """The head row (or None when it was deleted), locked for update when ``lock``."""
    query = select(head_table).where(head_table.c.id == 1)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).one_or_none()


def stored_hash(conn: Connection, seq: int) -> str | None:
    """The stored hash of entry ``seq``, if there is one.

    Call it in its own statement after locking the head: on PostgreSQL (READ COMMITTED) a
    statement that waited for the lock re-reads the locked row but not rows it joined, so a join
    would miss the entry the previous writer just committed.
    """
    query = select(entries_table.c.entry_hash).where(entries_table.c.seq == seq)
    return conn.execute(query).scalar_one_or_none()
