"""The tamper-evident ledger: one append-only, hash-chained record of runs, decisions and approvals.

Every entry stores the hash of the entry before it and the sha256 of its own canonical JSON
(:mod:`ethos.governance.ledger_canonical`), so editing, deleting, inserting or reordering any
entry breaks the chain at that entry. With ``$ETHOS_LEDGER_HMAC_KEY`` set, entries also carry an
HMAC-SHA256 signature, so even someone who rewrites the chain consistently cannot pass
verification without the key. Storage and write locking live in
:mod:`ethos.governance.ledger_store` (SQLite by default, PostgreSQL by URL).

>>> ledger = Ledger.open("/tmp/ledger.db")  # doctest: +SKIP
>>> ledger.append(kind="approval", actor="dr.lee", decision="approve")  # doctest: +SKIP
>>> ledger.verify()  # doctest: +SKIP
VerifyReport(intact, 1 entries, signatures not checked)
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ethos.governance import ledger_store as store
from ethos.governance.ledger_canonical import (
    GENESIS_HASH,
    HMAC_KEY_ENV,
    canonical_json,
    check_json_value,
    entry_body,
    entry_hash,
    head_body,
    hmac_key_from,
    sign,
    signature_ok,
)
from ethos.governance.ledger_errors import LedgerError

__all__ = ["Ledger", "LedgerEntry", "LedgerError", "VerifyReport"]

_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_OPTIONAL_FIELDS = (
    "run_id",
    "dataset_fingerprint",
    "config_hash",
    "model_hash",
    "audit_digest",
    "decision",
)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_MAX_ATTEMPTS = 12
_VERIFY_BATCH = 1000


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger record, exactly as stored (and hashed)."""

    seq: int
    kind: str
    actor: str
    created_at: datetime
    run_id: str | None = None
    dataset_fingerprint: str | None = None
    config_hash: str | None = None
    model_hash: str | None = None
    audit_digest: str | None = None
    decision: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    entry_hash: str = ""
    signature: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (time as ISO 8601 UTC), for ``ethos ledger show --json``."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["created_at"] = _format_time(self.created_at)
        return out

    def __repr__(self) -> str:
        parts = [f"#{self.seq}", self.kind, f"by {self.actor!r}"]
        if self.run_id is not None:
            parts.append(f"run {self.run_id!r}")
        if self.decision is not None:
            parts.append(f"decision {self.decision!r}")
        parts.append(_format_time(self.created_at))
        parts.append(f"hash {self.entry_hash[:12]}{' signed' if self.signature else ''}")
        return f"LedgerEntry({', '.join(parts)})"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of re-walking the chain: intact, or where it first breaks and why.

    ``count`` is the number of stored entries read; ``first_bad_seq`` is the sequence number of
    the first entry that is wrong or missing (None when intact); ``signatures_checked`` says
    whether a key was available, i.e. whether a consistent rewrite could have been caught.
    """

    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str | None = None
    signatures_checked: bool = False
    url: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """One line for a terminal."""
        signed = "signatures checked" if self.signatures_checked else "signatures not checked"
        if self.ok:
            return f"intact: {self.count} entries, {signed}"
        return f"BROKEN at entry {self.first_bad_seq}: {self.reason} ({self.count} entries read)"

    def __repr__(self) -> str:
        if self.ok:
            signed = "signatures checked" if self.signatures_checked else "signatures not checked"
            return f"VerifyReport(intact, {self.count} entries, {signed})"
        return (
            f"VerifyReport(BROKEN at seq {self.first_bad_seq}: {self.reason}; "
            f"{self.count} entries read)"
        )


class Ledger:
    """An open ledger. Use :meth:`open`; close it (or use ``with``) to release connections."""

    def __init__(self, engine: Engine, url: URL, hmac_key: bytes | None) -> None:
        self._engine = engine
        self._url = url
        self._key = hmac_key

    @classmethod
    def open(cls, url: str | Path | None = None, *, hmac_key: bytes | str | None = None) -> Ledger:
        """Open (creating if needed) the ledger at ``url``.

        ``url``: a SQLite file path or ``sqlite:///PATH``, or ``postgresql+psycopg://...``;
        default ``$ETHOS_LEDGER_URL``, else ``~/.ethos/ledger.db``. ``hmac_key``: the signing
        key, default ``$ETHOS_LEDGER_HMAC_KEY``; without one, entries are hashed but not signed.
        """
        key = hmac_key_from(hmac_key)
        resolved = store.resolve_url(url)
        engine = store.make_engine(resolved)
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                store.ensure_schema(engine, GENESIS_HASH)
                break
            except DBAPIError as exc:
                # Processes racing to create a new SQLite file can meet a lock that SQLite's
                # busy handler does not wait for (switching the new file to WAL); try again.
                if (
                    attempt < _MAX_ATTEMPTS
                    and isinstance(exc, OperationalError)
                    and _retryable(exc)
                ):
                    _back_off(attempt)
                    continue
                engine.dispose()
                raise store.connection_error(resolved, exc) from None
        return cls(engine, resolved, key)

    @property
    def url(self) -> str:
        """The database URL with any password masked."""
        return store.mask(self._url)

    @property
    def signing(self) -> bool:
        """Whether appends are signed and verification checks signatures."""
        return self._key is not None

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.url}, {'signed' if self.signing else 'unsigned'})"

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        *,
        kind: str,
        actor: str,
        run_id: str | None = None,
        dataset_fingerprint: str | None = None,
        config_hash: str | None = None,
        model_hash: str | None = None,
        audit_digest: str | None = None,
        decision: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> LedgerEntry:
        """Add one entry at the end of the chain, atomically, and return it as stored.

        ``kind`` names what happened (``run``, ``decision``, ``approval``,
        ``neuro.stimulation_change``, ``genome.edit_review``...); ``payload`` carries whatever
        else that kind needs, as JSON types. Safe to call from many processes at once.
        """
        fields: dict[str, Any] = {
            "kind": _check_kind(kind),
            "actor": _check_text("actor", actor, required=True),
            "run_id": run_id,
            "dataset_fingerprint": dataset_fingerprint,
            "config_hash": config_hash,
            "model_hash": model_hash,
            "audit_digest": audit_digest,
            "decision": decision,
        }
        for name in _OPTIONAL_FIELDS:
            fields[name] = _check_text(name, fields[name], required=False)
        payload_dict = dict(payload or {})
        check_json_value(payload_dict, "payload")
        # A private copy, exactly as a reader will parse it back.
        fields["payload"] = json.loads(canonical_json(payload_dict))

        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with self._engine.connect() as conn:
                    return self._append_once(store.for_writing(conn), fields)
            except (IntegrityError, OperationalError) as exc:
                if not _retryable(exc):
                    raise store.connection_error(self._url, exc) from None
                if attempt == _MAX_ATTEMPTS:
                    raise LedgerError(
                        f"could not append to {self.url} after {attempt} attempts: another "
                        f"writer kept the ledger busy ({_first_line(exc)})",
                        hint="retry later; if it persists, look for a stuck process holding "
                        "a transaction open on the ledger",
                    ) from None
                _back_off(attempt)
            except DBAPIError as exc:
                raise store.connection_error(self._url, exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _append_once(self, conn: Connection, fields: dict[str, Any]) -> LedgerEntry:
        with conn.begin():
            head = store.head_row(conn, lock=True)
            if head is None:
                raise LedgerError(
                    f"the ledger {self.url} has lost its head row, so it cannot be extended",
                    hint="run `ethos ledger verify` and investigate: the ledger was edited "
                    "outside ethos",
                )
            self._check_head_signature(head)
            if head.seq > 0 and store.stored_hash(conn, head.seq) != head.entry_hash:
                raise LedgerError(
                    f"the ledger {self.url} head (entry {head.seq}) does not match its "
                    "last entry, so it cannot be extended",
                    hint="run `ethos ledger verify` and investigate: the ledger was edited "
                    "outside ethos",
                )
            now = datetime.now(UTC)
            row = dict(
                fields, seq=head.seq + 1, created_at=_format_time(now), prev_hash=head.entry_hash
            )
            row["entry_hash"] = entry_hash(row)
            row["signature"] = (
                None if self._key is None else sign(self._key, canonical_json(entry_body(row)))
            )
            head_signature = (
                None
                if self._key is None
                else sign(self._key, head_body(row["seq"], row["entry_hash"]))
            )
            conn.execute(
                store.entries_table.insert().values(
                    {**row, "payload": canonical_json(row["payload"]).decode("utf-8")}
                )
            )
            conn.execute(
                store.head_table.update()
                .where(store.head_table.c.id == 1)
                .values(seq=row["seq"], entry_hash=row["entry_hash"], signature=head_signature)
            )
        return LedgerEntry(**{**row, "created_at": now})

    def _check_head_signature(self, head: Any) -> None:
        """Refuse to mix signed and unsigned writers, or two keys, in one chain."""
        if self._key is None:
            if head.signature is not None:
                raise LedgerError(
                    f"the ledger {self.url} is signed, but no signing key is set",
                    hint=f"set {HMAC_KEY_ENV} to the ledger's key before appending",
                )
            return
        if head.seq > 0 and not signature_ok(
            self._key, head_body(head.seq, head.entry_hash), head.signature
        ):
            what = "is unsigned" if head.signature is None else "was signed with another key"
            raise LedgerError(
                f"the ledger {self.url} {what}; appending with this key would leave a chain "
                "that cannot be verified",
                hint=f"use the ledger's own key in {HMAC_KEY_ENV}, or start a new ledger "
                "(another --url) for signed entries",
            )

    # -- reading ---------------------------------------------------------------------------

    def entries(self, *, run_id: str | None = None, kind: str | None = None) -> list[LedgerEntry]:
        """Stored entries in chain order, optionally only one run's or one kind's."""
        query = select(store.entries_table).order_by(store.entries_table.c.seq)
        if run_id is not None:
            query = query.where(store.entries_table.c.run_id == run_id)
        if kind is not None:
            query = query.where(store.entries_table.c.kind == kind)
        try:
            with self._engine.connect() as conn:
                return [_entry_from_row(dict(row._mapping)) for row in conn.execute(query)]
        except DBAPIError as exc:
            raise store.connection_error(self._url, exc) from None

    def __len__(self) -> int:
        """The number of entries the head records."""
        try:
            with self._engine.connect() as conn:
                head = store.head_row(conn, lock=False)
        except DBAPIError as exc:
            raise store.connection_error(self._url, exc) from None
        return 0 if head is None else int(head.seq)

    def verify(self) -> VerifyReport:
        """Re-walk the whole chain from the first entry and report the first broken one.

        Checks, in order, for each entry: its sequence number follows the previous one (a gap is
        a deleted entry), its ``prev_hash`` is the previous entry's hash, its payload is stored
        canonically, its hash matches its contents, and (with a key) its signature. Then the
        head must point at the last entry, which catches a deleted or appended tail.
        """
        try:
            with self._engine.connect() as conn, store.for_snapshot(conn).begin():
                return _walk(conn, self._key, self.url)
        except DBAPIError as exc:
            raise store.connection_error(self._url, exc) from None


def _walk(conn: Connection, key: bytes | None, url: str) -> VerifyReport:
    head = store.head_row(conn, lock=False)
    rows = conn.execution_options(yield_per=_VERIFY_BATCH).execute(
        select(store.entries_table).order_by(store.entries_table.c.seq)
    )
    problems: list[tuple[int, str]] = []  # only the first is reported; later ones are noise
    strays: list[int] = []
    expected, prev_hash, count = 1, GENESIS_HASH, 0
    for result_row in rows:
        row = dict(result_row._mapping)
        count += 1
        seq = int(row["seq"])
        if seq < expected:  # only possible below 1: seq is unique and sorted
            strays.append(seq)
            continue
        if not problems:
            problem = _entry_problem(row, expected, prev_hash, key)
            if problem is not None:
                problems.append((expected if seq != expected else seq, problem))
        expected, prev_hash = seq + 1, row["entry_hash"]
    last_seq = expected - 1
    if not problems:
        problem_at = _head_problem(head, last_seq, prev_hash, key)
        if problem_at is not None:
            problems.append(problem_at)
    if problems:
        bad_seq, reason = problems[0]
        if strays:
            reason += f" (also found out-of-place entries with seq {strays})"
    elif strays:
        bad_seq, reason = (
            strays[0],
            "sequence numbers start at 1; this entry was put in outside ethos",
        )
    else:
        return VerifyReport(True, count, signatures_checked=key is not None, url=url)
    return VerifyReport(False, count, bad_seq, reason, signatures_checked=key is not None, url=url)


def _entry_problem(
    row: Mapping[str, Any], expected: int, prev_hash: str, key: bytes | None
) -> str | None:
    seq = int(row["seq"])
    if seq != expected:
        return f"entry {expected} is missing (the next stored entry is {seq})"
    if row["prev_hash"] != prev_hash:
        before = "the genesis value" if seq == 1 else f"the hash of entry {seq - 1}"
        return f"its prev_hash is not {before} (an entry before it was removed, added or moved)"
    try:
        payload = json.loads(row["payload"])
    except (TypeError, ValueError):
        return "its payload is not valid JSON (edited outside ethos)"
    if not isinstance(payload, dict) or canonical_json(payload).decode("utf-8") != row["payload"]:
        return "its payload is not in canonical form (edited outside ethos)"
    fields = dict(row, payload=payload)
    if entry_hash(fields) != row["entry_hash"]:
        return "its contents do not match its hash (a field was edited)"
    if key is not None:
        if row["signature"] is None:
            return (
                "it is not signed, but a signing key is set (every entry of a signed ledger "
                "must be signed; a ledger started without a key cannot be verified with one)"
            )
        if not signature_ok(key, canonical_json(entry_body(fields)), row["signature"]):
            return (
                "its signature does not match (re-hashed without the key, or signed with "
                "another key)"
            )
    return None


def _head_problem(
    head: Any, last_seq: int, last_hash: str, key: bytes | None
) -> tuple[int, str] | None:
    if head is None:
        return last_seq + 1, "the ledger's head row is missing (edited outside ethos)"
    if head.seq > last_seq:
        missing = (
            f"entry {head.seq}"
            if head.seq == last_seq + 1
            else f"entries {last_seq + 1}..{head.seq}"
        )
        return last_seq + 1, f"{missing} missing: the head records {head.seq} entries"
    if head.seq < last_seq:
        return (
            head.seq + 1,
            f"the head records {head.seq} entries, so entries after it were added outside ethos",
        )
    if head.entry_hash != last_hash:
        return max(last_seq, 1), "the head's hash does not match the last entry"
    if (
        key is not None
        and last_seq > 0
        and not signature_ok(key, head_body(head.seq, head.entry_hash), head.signature)
    ):
        return last_seq, "the head's signature does not match (edited without the key)"
    return None


def _entry_from_row(row: Mapping[str, Any]) -> LedgerEntry:
    try:
        payload = json.loads(row["payload"])
        created_at = datetime.strptime(row["created_at"], _TIME_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise LedgerError(
            f"ledger entry {row['seq']} cannot be read (its payload or time was edited)",
            hint="run `ethos ledger verify` to locate the damage",
        ) from None
    values = {name: row[name] for name in LedgerEntry.__dataclass_fields__ if name in row}
    return LedgerEntry(**{**values, "payload": payload, "created_at": created_at})


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise LedgerError(
            f"ledger entry kind {kind!r} is not valid",
            hint="use 1-64 lowercase letters, digits, '_', '.' or '-', starting with a letter "
            "(e.g. 'approval', 'neuro.stimulation_change')",
        )
    return kind


def _check_text(name: str, value: Any, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise LedgerError(
            f"ledger field {name} must be {'a non-empty' if required else 'a'} string, "
            f"got {value!r}",
            hint=f"pass {name} as a str" + ("" if required else " or leave it out"),
        )
    if len(value) > store.MAX_FIELD_CHARS:
        raise LedgerError(
            f"ledger field {name} is {len(value)} characters long; "
            f"the limit is {store.MAX_FIELD_CHARS}",
            hint="put long values in payload, or store a hash of them here",
        )
    return value


def _back_off(attempt: int) -> None:
    """Sleep before try ``attempt + 1``: random, up to 2 ms doubling per try, at most 0.5 s, so
    processes that collided do not collide again in step."""
    time.sleep(random.uniform(0.0, min(0.002 * 2**attempt, 0.5)))


def _retryable(exc: DBAPIError) -> bool:
    """Lock contention, a lost race or a dropped pooled connection (worth another try), not a
    dead server or a bad URL (a fresh connection fails again and is reported on the last try)."""
    if isinstance(exc, IntegrityError) or exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in ("40001", "40P01", "55P03"):  # serialization failure, deadlock, lock timeout
        return True
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
