"""Test helpers: fill a ledger, and tamper with it in SQL the way an attacker would (no API)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, text

from ethos.governance import Ledger, LedgerEntry
from ethos.governance.ledger_canonical import (
    canonical_json,
    entry_body,
    entry_hash,
    head_body,
    sign,
)
from ethos.governance.ledger_store import resolve_url

KEY = "test-key-0123456789abcdef"
N_ENTRIES = 6

# Every column of the entries table; each is covered by the hash or (signature) by the HMAC.
ENTRY_COLUMNS = (
    "seq",
    "kind",
    "actor",
    "run_id",
    "dataset_fingerprint",
    "config_hash",
    "model_hash",
    "audit_digest",
    "decision",
    "created_at",
    "payload",
    "prev_hash",
    "entry_hash",
    "signature",
)


def fill(url: str, *, key: str | None = None, n: int = N_ENTRIES) -> list[LedgerEntry]:
    """A small ledger with varied entries: every optional field set on some, absent on others."""
    out = []
    with Ledger.open(url, hmac_key=key) as ledger:
        for i in range(1, n + 1):
            full = i % 2 == 1
            out.append(
                ledger.append(
                    kind="approval" if i % 3 == 0 else "run",
                    actor=f"reviewer-{i}",
                    run_id=f"run-{i}",
                    dataset_fingerprint=f"{i:064x}" if full else None,
                    config_hash=f"{i + 100:064x}" if full else None,
                    model_hash=f"{i + 200:064x}",
                    audit_digest=f"{i + 300:064x}" if full else None,
                    decision="approve" if full else "reject",
                    payload={"dose_ma": 0.1 * i, "note": "größe ✓", "list": [i, None, True]},
                )
            )
    return out


class Tamperer:
    """One raw connection pool for many edits (the field-by-field loop makes hundreds)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(resolve_url(url))
        with self.engine.begin() as conn:
            drop_triggers(conn)

    def __enter__(self) -> Tamperer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.dispose()

    def row(self, seq: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            query = text("SELECT * FROM ethos_ledger_entries WHERE seq = :s")
            return dict(conn.execute(query, {"s": seq}).one()._mapping)

    def set(self, seq: int, column: str, value: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(f"UPDATE ethos_ledger_entries SET {column} = :v WHERE seq = :s"),
                {"v": value, "s": seq},
            )


def drop_triggers(conn: Connection) -> None:
    """Remove the append-only triggers, as an attacker with DDL rights would first."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS ethos_ledger_no_update")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS ethos_ledger_no_delete")
    else:
        conn.exec_driver_sql(
            "DROP TRIGGER IF EXISTS ethos_ledger_no_change ON ethos_ledger_entries"
        )


@contextmanager
def raw(url: str) -> Iterator[Connection]:
    """A plain transaction on the ledger's database, with the append-only triggers dropped."""
    engine = create_engine(resolve_url(url))
    try:
        with engine.begin() as conn:
            drop_triggers(conn)
            yield conn
    finally:
        engine.dispose()


def sql(url: str, statement: str, **params: Any) -> list[Any]:
    """Run one raw statement (triggers dropped); rows for a SELECT, else []."""
    with raw(url) as conn:
        result = conn.execute(text(statement), params)
        return [dict(r._mapping) for r in result] if result.returns_rows else []


def row(url: str, seq: int) -> dict[str, Any]:
    return sql(url, "SELECT * FROM ethos_ledger_entries WHERE seq = :s", s=seq)[0]


def set_column(url: str, seq: int, column: str, value: Any) -> None:
    sql(url, f"UPDATE ethos_ledger_entries SET {column} = :v WHERE seq = :s", v=value, s=seq)


def shift_up(conn: Connection, from_seq: int) -> None:
    """Renumber entries >= from_seq one up (via negatives: seq is unique at every row update)."""
    conn.execute(
        text("UPDATE ethos_ledger_entries SET seq = -(seq + 1) WHERE seq >= :s"), {"s": from_seq}
    )
    conn.execute(text("UPDATE ethos_ledger_entries SET seq = -seq WHERE seq < 0"))


def insert(conn: Connection, values: Mapping[str, Any]) -> None:
    columns = ", ".join(values)
    params = ", ".join(f":{c}" for c in values)
    conn.execute(text(f"INSERT INTO ethos_ledger_entries ({columns}) VALUES ({params})"), values)


def rehash_from(conn: Connection, seq: int, *, key: str | None = None) -> None:
    """Recompute hashes (and, given the key, signatures) from ``seq`` on and point the head at the
    end: a rewrite that leaves the chain consistent, as an attacker with DB access would."""
    prev = (
        conn.execute(
            text("SELECT entry_hash FROM ethos_ledger_entries WHERE seq = :s"), {"s": seq - 1}
        ).scalar_one_or_none()
        or "0" * 64
    )
    rows = conn.execute(
        text("SELECT * FROM ethos_ledger_entries WHERE seq >= :s ORDER BY seq"), {"s": seq}
    ).all()
    for r in rows:
        fields = dict(r._mapping)
        fields["prev_hash"] = prev
        fields["payload"] = json.loads(fields["payload"])
        new_hash = entry_hash(fields)
        # without the key the forger can only leave the old signature in place
        signature = sign(KEY.encode(), canonical_json(entry_body(fields))) if key else r.signature
        conn.execute(
            text(
                "UPDATE ethos_ledger_entries SET prev_hash = :p, entry_hash = :h, signature = :g "
                "WHERE seq = :s"
            ),
            {"p": prev, "h": new_hash, "g": signature, "s": fields["seq"]},
        )
        prev = new_hash
    last_seq = conn.execute(text("SELECT max(seq) FROM ethos_ledger_entries")).scalar_one()
    conn.execute(
        text("UPDATE ethos_ledger_head SET seq = :s, entry_hash = :h"), {"s": last_seq, "h": prev}
    )
    if key:
        conn.execute(
            text("UPDATE ethos_ledger_head SET signature = :g"),
            {"g": sign(KEY.encode(), head_body(last_seq, prev))},
        )


def forged_row(seq: int, prev_hash: str, *, key: str | None = None) -> dict[str, Any]:
    """An entry computed correctly by the rules (signed only if the forger has the key)."""
    fields: dict[str, Any] = {
        "seq": seq,
        "kind": "approval",
        "actor": "mallory",
        "run_id": "run-forged",
        "dataset_fingerprint": None,
        "config_hash": None,
        "model_hash": None,
        "audit_digest": None,
        "decision": "approve",
        "created_at": "2024-01-01T00:00:00.000000Z",
        "payload": {},
        "prev_hash": prev_hash,
    }
    fields["entry_hash"] = entry_hash(fields)
    fields["signature"] = sign(KEY.encode(), canonical_json(entry_body(fields))) if key else None
    fields["payload"] = "{}"
    return fields
