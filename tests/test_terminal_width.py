"""Piped command output is not cut at 80 columns.

rich lays tables out for 80 columns when standard output is not a terminal: `ethos keys list`
printed a key id cut short that `ethos keys revoke` then refused, and `ethos ledger show` wrapped
its dates. These run the real commands with their output captured (a pipe), no COLUMNS set.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from cli_helpers import run_ethos
from ethos.governance.ledger import Ledger
from ethos.serving.store import ServingStore


def ethos(*args: str) -> subprocess.CompletedProcess[str]:
    """The command with no declared width, as in a pipe or a log file."""
    return run_ethos(*args, columns=None)


def test_keys_list_prints_whole_ids_that_revoke_accepts(tmp_path: Path) -> None:
    db = str(tmp_path / "serving.db")
    with ServingStore(db) as store:
        key = store.create_key(
            "a rather long name for the triage front end of ward 7", ("predict", "explain")
        )
    listed = ethos("keys", "list", "--db", db)
    assert listed.returncode == 0, listed.stderr
    [line] = [row for row in listed.stdout.splitlines() if key.key_id in row]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line)  # the date on the id's own row
    revoked = ethos("keys", "revoke", key.key_id, "--db", db)
    assert revoked.returncode == 0, revoked.stderr


def test_ledger_show_keeps_each_date_on_one_line(tmp_path: Path) -> None:
    url = str(tmp_path / "ledger.db")
    with Ledger.open(url) as ledger:
        entry = ledger.append(
            kind="decision", actor="a very long actor name " * 3, run_id="r" * 40, decision="PASS"
        )
    shown = ethos("ledger", "show", "--url", url)
    assert shown.returncode == 0, shown.stderr
    stamp = entry.created_at.strftime("%Y-%m-%d %H:%M:%S")
    assert stamp in shown.stdout
    assert entry.entry_hash[:12] in shown.stdout
