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
        inspect,
        select,
        text,
    )
    from sqlalchemy.engine import URL
    from sqlalchemy.exc import DBAPIError
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise LedgerError(
        "the ledger needs SQLAlchemy, which is not installed",
        hint="pip install 'ethos[governance]'",
    ) from exc

from ethos import database
from ethos.database import for_snapshot, for_writing, is_sqlite, mask

__all__ = [
    "DEFAULT_PATH",
    "ROLE",
    "URL_ENV",
    "URL_HINT",
    "connection_error",
    "ensure_schema",
    "for_snapshot",
    "for_writing",
    "head_row",
    "is_sqlite",
    "make_engine",
    "mask",
    "resolve_url",
    "stored_hash",
]

URL_ENV = "ETHOS_LEDGER_URL"
DEFAULT_PATH = Path("~/.ethos/ledger.db")
ROLE = database.Role(noun="ledger", env=URL_ENV, default_path=DEFAULT_PATH, error=LedgerError)
URL_HINT = ROLE.hint

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


def resolve_url(url: str | Path | None) -> URL:
    """The ledger's URL: ``url``, else ``$ETHOS_LEDGER_URL``, else ``~/.ethos/ledger.db``.

    A bare path means a SQLite file; its directory is created. ``postgresql://`` without a driver
    means psycopg 3 (see :func:`ethos.database.resolve_url`).
    """
    return database.resolve_url(url, ROLE)


def make_engine(url: URL) -> Engine:
    """An engine with each backend's locking behaviour set up (see the module docstring)."""
    return database.make_engine(url, ROLE)


def connection_error(url: URL, exc: DBAPIError) -> LedgerError:
    """A DBAPI failure to reach or open the database, said in the user's terms."""
    return database.connection_error(url, exc, ROLE)


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
