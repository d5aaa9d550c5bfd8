"""Shared test set-up: offline hub, and small helpers for writing hostile files."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Tests never write to the user's own ledger (~/.ethos/ledger.db): commands that record a decision
# without --ledger use a throwaway one.
os.environ.setdefault(
    "ETHOS_LEDGER_URL", os.path.join(tempfile.mkdtemp(prefix="ethos-test-ledger-"), "ledger.db")
)
