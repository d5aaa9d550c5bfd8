"""``ethos ledger verify`` and ``ethos ledger show`` (the Typer sub-app, run in-process)."""

from __future__ import annotations

import json

import pytest
from ledger_helpers import N_ENTRIES, fill, sql
from typer.testing import CliRunner

from ethos.governance import LedgerError
from ethos.governance.ledger_cli import app

runner = CliRunner()


def test_verify_exits_0_when_intact_and_1_at_the_first_break(ledger_url: str) -> None:
    fill(ledger_url)
    ok = runner.invoke(app, ["verify", "--url", ledger_url])
    assert ok.exit_code == 0, ok.output
    assert f"intact: {N_ENTRIES} entries" in ok.output
    assert "ETHOS_LEDGER_HMAC_KEY is not set" in ok.output

    sql(ledger_url, "UPDATE ethos_ledger_entries SET decision = 'approve' WHERE seq = 4")
    broken = runner.invoke(app, ["verify", "--url", ledger_url])
    assert broken.exit_code == 1, broken.output
    assert "BROKEN at entry 4: its contents do not match its hash" in broken.output


def test_verify_uses_the_environment(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(ledger_url, key="k")
    monkeypatch.setenv("ETHOS_LEDGER_URL", ledger_url)
    monkeypatch.setenv("ETHOS_LEDGER_HMAC_KEY", "k")
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0, result.output
    assert "signatures checked" in result.output and "not set" not in result.output


def test_show_table_and_filters(ledger_url: str) -> None:
    fill(ledger_url)
    table = runner.invoke(app, ["show", "--url", ledger_url])
    assert table.exit_code == 0, table.output
    assert "run-1" in table.output and "reviewer-6" in table.output
    only = runner.invoke(app, ["show", "--url", ledger_url, "--run", "run-2"])
    assert "run-2" in only.output and "run-1" not in only.output
    none = runner.invoke(app, ["show", "--url", ledger_url, "--kind", "nothing"])
    assert "no matching entries" in none.output


def test_show_json(ledger_url: str) -> None:
    fill(ledger_url)
    result = runner.invoke(app, ["show", "--url", ledger_url, "--json", "--kind", "approval"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [e["seq"] for e in entries] == [3, 6]
    assert entries[0]["payload"]["note"] == "größe ✓"
    assert set(entries[0]) >= {"entry_hash", "prev_hash", "created_at", "signature", "decision"}


def test_unreachable_url_raises_the_ledger_error() -> None:
    result = runner.invoke(app, ["verify", "--url", "mysql://u:pw@h/db"])
    assert isinstance(result.exception, LedgerError)
    assert "supports SQLite and PostgreSQL" in str(result.exception)
