"""Every kind of tampering, done in SQL behind the API's back, is caught at the right entry.

One suite, run on SQLite and on a real PostgreSQL server (the ``backend`` fixture).
"""

from __future__ import annotations

from typing import Any

import pytest
from ledger_helpers import (
    ENTRY_COLUMNS,
    KEY,
    N_ENTRIES,
    Tamperer,
    fill,
    forged_row,
    insert,
    raw,
    rehash_from,
    row,
    set_column,
    shift_up,
    sql,
)
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ethos.governance import Ledger, VerifyReport


def verify(url: str, key: str | None = None) -> VerifyReport:
    with Ledger.open(url, hmac_key=key) as ledger:
        return ledger.verify()


def edited(column: str, value: Any, seq: int) -> Any:
    """A small, plausible edit of one stored value."""
    if column == "seq":
        return seq + 100
    if column == "payload":
        return value.replace('"dose_ma":', '"dose_ma":1') if "dose_ma" in value else '{"x":1}'
    if value is None:
        return "tampered"
    if column == "created_at":  # one microsecond later
        digit = value[-2]
        return value[:-2] + ("1" if digit != "1" else "2") + value[-1]
    last = value[-1]
    return value[:-1] + ("0" if last != "0" else "1")


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_editing_any_field_of_any_entry_is_located(ledger_url: str, signed: bool) -> None:
    key = KEY if signed else None
    fill(ledger_url, key=key)
    # Without a key nobody can check a signature, so editing it is only detectable when signed.
    columns = ENTRY_COLUMNS if signed else tuple(c for c in ENTRY_COLUMNS if c != "signature")
    with Ledger.open(ledger_url, hmac_key=key) as ledger, Tamperer(ledger_url) as db:
        assert ledger.verify().ok
        for column in columns:
            for seq in (1, 3, N_ENTRIES):
                original = db.row(seq)[column]
                new = edited(column, original, seq)
                assert new != original
                db.set(seq, column, new)
                report = ledger.verify()
                assert not report.ok, (column, seq)
                assert report.first_bad_seq == seq, (column, seq, report)
                assert report.reason
                # put it back: the ledger must verify again, so each edit is tested alone
                db.set(seq + 100 if column == "seq" else seq, column, original)
                assert ledger.verify().ok, (column, seq)


def test_payload_rewritten_with_same_meaning_is_still_caught(ledger_url: str) -> None:
    fill(ledger_url)
    payload = row(ledger_url, 2)["payload"]
    set_column(ledger_url, 2, "payload", payload.replace(",", ", "))  # same JSON, new bytes
    report = verify(ledger_url)
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "canonical" in str(report.reason)


@pytest.mark.parametrize("seq", [1, 3, N_ENTRIES])
def test_deleting_an_entry_is_located(ledger_url: str, seq: int) -> None:
    fill(ledger_url)
    sql(ledger_url, "DELETE FROM ethos_ledger_entries WHERE seq = :s", s=seq)
    report = verify(ledger_url)
    assert (report.ok, report.first_bad_seq) == (False, seq), report
    assert "missing" in str(report.reason)
    assert report.count == N_ENTRIES - 1


def test_deleting_the_tail_and_the_head_row_are_caught(ledger_url: str) -> None:
    fill(ledger_url)
    sql(ledger_url, "DELETE FROM ethos_ledger_entries WHERE seq >= 4")
    report = verify(ledger_url)
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "entries 4..6 missing" in str(report.reason)
    sql(ledger_url, "DELETE FROM ethos_ledger_head")
    report = verify(ledger_url)
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "head row is missing" in str(report.reason)


@pytest.mark.parametrize("seq", [1, 4])
def test_inserting_a_row_in_the_middle_is_located(ledger_url: str, seq: int) -> None:
    fill(ledger_url)
    with raw(ledger_url) as conn:
        shift_up(conn, seq)
        insert(conn, forged_row(seq, "f" * 64))  # a careless forger: wrong prev_hash
    report = verify(ledger_url)
    assert (report.ok, report.first_bad_seq) == (False, seq), report
    assert report.count == N_ENTRIES + 1


def test_inserting_a_consistent_forgery_breaks_the_next_entry_or_its_signature(
    ledger_url: str,
) -> None:
    """A forger who links the new row correctly still breaks the entry after it; with a key, the
    forged row itself fails its signature."""
    fill(ledger_url, key=KEY)
    with raw(ledger_url) as conn:
        prev = conn.execute(
            text("SELECT entry_hash FROM ethos_ledger_entries WHERE seq = 2")
        ).scalar_one()
        shift_up(conn, 3)
        forged = forged_row(3, prev)
        # prev_hash is unique, so the forger re-points the displaced entry at the forgery
        conn.execute(
            text("UPDATE ethos_ledger_entries SET prev_hash = :h WHERE seq = 4"),
            {"h": forged["entry_hash"]},
        )
        insert(conn, forged)
    unsigned = verify(ledger_url)
    assert (unsigned.ok, unsigned.first_bad_seq) == (False, 4), unsigned
    signed = verify(ledger_url, KEY)
    assert (signed.ok, signed.first_bad_seq) == (False, 3), signed
    assert "sign" in str(signed.reason)


def test_appending_behind_the_api_is_caught(ledger_url: str) -> None:
    entries = fill(ledger_url)
    with raw(ledger_url) as conn:
        insert(conn, forged_row(N_ENTRIES + 1, entries[-1].entry_hash))
    report = verify(ledger_url)
    assert (report.ok, report.first_bad_seq) == (False, N_ENTRIES + 1)
    assert "added outside ethos" in str(report.reason)


def test_a_row_numbered_before_the_start_is_caught(ledger_url: str) -> None:
    fill(ledger_url)
    with raw(ledger_url) as conn:
        insert(conn, forged_row(0, "e" * 64))
    report = verify(ledger_url)
    assert (report.ok, report.first_bad_seq) == (False, 0), report


@pytest.mark.parametrize(("a", "b"), [(2, 4), (5, 6), (1, N_ENTRIES)])
def test_swapping_two_entries_is_located(ledger_url: str, a: int, b: int) -> None:
    fill(ledger_url)
    with raw(ledger_url) as conn:
        for old, new in ((a, -1), (b, a), (-1, b)):
            conn.execute(
                text("UPDATE ethos_ledger_entries SET seq = :n WHERE seq = :o"),
                {"n": new, "o": old},
            )
    report = verify(ledger_url)
    assert (report.ok, report.first_bad_seq) == (False, a), report


def test_consistent_rewrite_passes_without_key_but_not_with_it(ledger_url: str) -> None:
    """The reason to set ETHOS_LEDGER_HMAC_KEY: an attacker who edits entry 3 and re-hashes the
    rest of the chain (and the head) leaves nothing a hash can catch; the signature catches it."""
    fill(ledger_url, key=KEY)
    set_column(ledger_url, 3, "decision", "approve-forged")
    with raw(ledger_url) as conn:
        rehash_from(conn, 3)  # the attacker has no key: signatures stay stale (or are dropped)
    assert verify(ledger_url).ok  # hashes alone cannot tell
    report = verify(ledger_url, KEY)
    assert (report.ok, report.first_bad_seq) == (False, 3), report
    assert "signature does not match" in str(report.reason)
    assert report.signatures_checked

    sql(ledger_url, "UPDATE ethos_ledger_entries SET signature = NULL")  # strip them all
    report = verify(ledger_url, KEY)
    assert (report.ok, report.first_bad_seq) == (False, 1), report
    assert "not signed" in str(report.reason)


def test_rewrite_with_the_key_is_undetectable_so_guard_the_key(ledger_url: str) -> None:
    """Documents the limit: whoever holds the key can rewrite history consistently."""
    fill(ledger_url, key=KEY)
    set_column(ledger_url, 2, "decision", "reject")
    with raw(ledger_url) as conn:
        rehash_from(conn, 2, key=KEY)
    assert verify(ledger_url, KEY).ok


def test_wrong_key_fails_verification(ledger_url: str) -> None:
    fill(ledger_url, key=KEY)
    report = verify(ledger_url, "another-key")
    assert (report.ok, report.first_bad_seq) == (False, 1)


def test_head_edits_are_caught(ledger_url: str) -> None:
    fill(ledger_url, key=KEY)
    sql(ledger_url, "UPDATE ethos_ledger_head SET signature = :g", g="0" * 64)
    report = verify(ledger_url, KEY)
    assert (report.ok, report.first_bad_seq) == (False, N_ENTRIES)
    assert "head's signature" in str(report.reason)
    sql(ledger_url, "UPDATE ethos_ledger_head SET entry_hash = :h", h="0" * 64)
    report = verify(ledger_url, KEY)
    assert (report.ok, report.first_bad_seq) == (False, N_ENTRIES)


def test_plain_updates_and_deletes_are_refused_by_the_database(ledger_url: str) -> None:
    fill(ledger_url)
    with Ledger.open(ledger_url) as ledger:
        engine = ledger._engine
        for statement in (
            "UPDATE ethos_ledger_entries SET decision = 'x' WHERE seq = 1",
            "DELETE FROM ethos_ledger_entries WHERE seq = 1",
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.exec_driver_sql(statement)
        assert ledger.verify().ok
