"""The ledger's Python API: appending, reading back, canonical form and input checks."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ledger_helpers import KEY

from ethos.governance import Ledger, LedgerEntry, LedgerError, VerifyReport
from ethos.governance.ledger_canonical import GENESIS_HASH, canonical_json


def test_append_returns_the_stored_entry_and_links_the_chain(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        before = datetime.now(UTC)
        first = ledger.append(
            kind="run",
            actor="trainer",
            run_id="run-1",
            dataset_fingerprint="f" * 64,
            config_hash="c" * 64,
            model_hash="m" * 64,
            audit_digest="a" * 64,
            decision="pass",
            payload={"epochs": 3, "lr": 2e-5},
        )
        second = ledger.append(kind="approval", actor="dr.lee", run_id="run-1", decision="approve")
        stored = ledger.entries()
    assert stored == [first, second]
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.entry_hash
    assert first.signature is None
    assert before - timedelta(seconds=1) <= first.created_at <= datetime.now(UTC)
    assert first.created_at.tzinfo is UTC
    assert stored[0].payload == {"epochs": 3, "lr": 2e-5}


def test_entries_filter_by_run_and_kind(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        for run in ("a", "b", "a"):
            ledger.append(kind="run", actor="t", run_id=run)
        ledger.append(kind="approval", actor="x", run_id="a", decision="approve")
        assert [e.seq for e in ledger.entries(run_id="a")] == [1, 3, 4]
        assert [e.seq for e in ledger.entries(kind="approval")] == [4]
        assert [e.seq for e in ledger.entries(run_id="b", kind="run")] == [2]
        assert ledger.entries(run_id="nope") == []
        assert len(ledger) == 4


def test_domain_payloads_round_trip_exactly(tmp_path: Path) -> None:
    """Other kinds of entries (neural stimulation, gene edits) ride in payload unchanged."""
    payload: dict[str, Any] = {
        "amplitude_ma": 1.25,
        "pulse_width_us": 90,
        "frequency_hz": 130.0,
        "tiny": 1e-300,
        "big": 12345678901234567890,
        "negative_zero": -0.0,
        "third": 1 / 3,
        "nested": {"guide": "GACGCATAAAGATGAGACGC", "off_targets": [0, 1, 2], "ok": True},
        "unicode": "Größe ✓ 漢字",
        "none": None,
    }
    with Ledger.open(tmp_path / "l.db") as ledger:
        appended = ledger.append(
            kind="neuro.stimulation_change", actor="clinician", payload=payload
        )
        (stored,) = ledger.entries()
        assert ledger.verify().ok
    assert appended.payload == stored.payload == payload
    assert math.copysign(1.0, stored.payload["negative_zero"]) == -1.0
    assert stored.payload["third"] == 1 / 3


def test_canonical_json_is_sorted_compact_utf8_with_shortest_floats() -> None:
    assert canonical_json({"b": 1, "a": [1.0, 0.1, "é"]}) == '{"a":[1.0,0.1,"é"],"b":1}'.encode()
    assert canonical_json({"x": 1e16, "y": 2.5e-7}) == b'{"x":1e+16,"y":2.5e-07}'


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"x": math.nan}, r"payload\.x is nan"),
        ({"x": [1, math.inf]}, r"payload\.x\[1\] is inf"),
        ({"when": datetime(2024, 1, 1)}, r"payload\.when is a datetime"),
        ({"t": (1, 2)}, r"payload\.t is a tuple"),
        ({"d": {1: "a"}}, r"payload\.d has a key 1 of type int"),
    ],
)
def test_non_json_payloads_are_refused(
    tmp_path: Path, payload: dict[str, Any], expected: str
) -> None:
    with Ledger.open(tmp_path / "l.db") as ledger:
        with pytest.raises(LedgerError, match=expected):
            ledger.append(kind="run", actor="me", payload=payload)
        assert len(ledger) == 0  # nothing half-written


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"kind": "Approval"}, "kind 'Approval' is not valid"),
        ({"kind": ""}, "kind '' is not valid"),
        ({"actor": "  "}, "actor must be a non-empty string"),
        ({"run_id": 7}, "run_id must be a string, got 7"),
        ({"decision": "x" * 300}, "decision is 300 characters long"),
    ],
)
def test_bad_fields_are_refused(tmp_path: Path, fields: dict[str, Any], expected: str) -> None:
    arguments: dict[str, Any] = {"kind": "run", "actor": "me", **fields}
    with Ledger.open(tmp_path / "l.db") as ledger, pytest.raises(LedgerError, match=expected):
        ledger.append(**arguments)


def test_signed_entries_and_readable_reprs(ledger_url: str) -> None:
    with Ledger.open(ledger_url, hmac_key=KEY) as ledger:
        entry = ledger.append(kind="approval", actor="dr.lee", run_id="r1", decision="approve")
        report = ledger.verify()
        assert repr(ledger).endswith(", signed)")
    assert entry.signature is not None and len(entry.signature) == 64
    assert repr(entry).startswith(
        "LedgerEntry(#1, approval, by 'dr.lee', run 'r1', decision 'approve'"
    )
    assert "signed" in repr(entry)
    assert repr(report) == "VerifyReport(intact, 1 entries, signatures checked)"
    assert report and report.count == 1 and report.first_bad_seq is None
    broken = VerifyReport(False, 5, 3, "its contents do not match its hash")
    assert repr(broken) == (
        "VerifyReport(BROKEN at seq 3: its contents do not match its hash; 5 entries read)"
    )
    assert not broken


def test_empty_ledger_verifies(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        assert ledger.verify() == VerifyReport(True, 0, url=ledger.url)


def test_signed_and_unsigned_writers_are_not_mixed(ledger_url: str) -> None:
    with Ledger.open(ledger_url, hmac_key=KEY) as signed:
        signed.append(kind="run", actor="me")
    with Ledger.open(ledger_url) as unsigned, pytest.raises(LedgerError, match="is signed, but no"):
        unsigned.append(kind="run", actor="me")
    with Ledger.open(ledger_url, hmac_key="wrong") as other:
        with pytest.raises(LedgerError, match="signed with another key"):
            other.append(kind="run", actor="me")
        assert len(other) == 1


def test_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ETHOS_LEDGER_HMAC_KEY", KEY)
    with Ledger.open(tmp_path / "l.db") as ledger:
        assert ledger.signing
        assert ledger.append(kind="run", actor="me").signature is not None


def test_to_dict_is_json_ready(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.db") as ledger:
        entry = ledger.append(kind="run", actor="me", payload={"a": 1})
    data = json.loads(json.dumps(entry.to_dict()))
    assert data["seq"] == 1 and data["payload"] == {"a": 1}
    assert data["created_at"].endswith("Z")
    assert isinstance(entry, LedgerEntry)
