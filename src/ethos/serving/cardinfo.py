"""What `GET /v1/model` shows of the run's model card: read from the card's files, never rebuilt.

`ethos card` (and `ethos run`) writes ``model/README.md`` (YAML metadata, then Markdown) and
``card.html`` (the same card as a page) into the run directory. Serving reads them as they are
on each request, so a card written or rewritten while the server runs shows up without a
restart, and says whether it still describes the decision being served. The card records the
ledger hash of the gate decision it was written after; three hashes are compared, the card's,
the run's ``decision.json`` (now) and the one the server was admitted under (at start-up):

- the run's decision differs from the served one: the run was gated again after the server
  started, and `ethos gate` rewrote the card, so the card describes the new decision while the
  server still serves under the old one (``stale: "server"``; restart `ethos serve`, which
  checks the new decision);
- the card's differs from the run's: the card is older than the decision (``stale: "card"``;
  run `ethos card` again).

The Markdown is ethos's own fixed format (:mod:`ethos.governance.card`), so a few anchored
patterns find what is needed; anything not found is None, not an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ethos.errors import EthosError
from ethos.governance.card import CLASSIFICATION_METRICS, QA_METRICS
from ethos.rundir import RunDir

log = logging.getLogger("ethos.serving")

CARD_URL = "/v1/model/card"
"""Where the server answers with the run's ``card.html``."""
MAX_INTENDED_USE = 5
"""Intended-use statements shown at most (the card has two or three)."""

_CODE_SPAN = re.compile(r"(`+) ?(.*?) ?\1")
_ESCAPE = re.compile(r"\\(.)")
_DECISION = re.compile(r"^- Decision: \*\*(\w+)\*\* under policy (.+?) version")
_WELFARE = re.compile(r"^- Welfare score W = ([-+0-9.e]+|n/a), threshold ([-+0-9.e]+|n/a)")
_ENTRY_HASH = re.compile(r"^- Ledger entry .*?, entry hash `+ ?([0-9a-fA-F]+)")


def plain(markdown: str) -> str:
    """One line of the card's Markdown as plain text: code spans, bold and escapes undone."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), markdown)
    return _ESCAPE.sub(lambda m: m.group(1), text.replace("**", "")).strip()


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _split(readme: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The metadata block, and each ``## `` section's lines, by heading."""
    metadata: dict[str, Any] = {}
    body = readme
    if readme.startswith("---\n"):
        head, _, body = readme[4:].partition("\n---\n")
        try:
            loaded = yaml.safe_load(head)
        except yaml.YAMLError:
            loaded = None
        metadata = loaded if isinstance(loaded, dict) else {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in body.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
        elif current is not None:
            current.append(line)
    return metadata, sections


def _test_metrics(metadata: Mapping[str, Any], task: str) -> dict[str, float]:
    """The card's test results (model-index), keyed as in metrics.json (accuracy, macro_f1...).

    The card names them by model-index type, where ``f1`` is macro-F1 for a classifier and
    token F1 for extractive QA, so the task picks the table that maps them back.
    """
    table = QA_METRICS if task == "extractive_qa" else CLASSIFICATION_METRICS
    keys = {kind: key for key, kind, _, _ in table}
    out: dict[str, float] = {}
    for entry in metadata.get("model-index") or []:
        for result in (entry or {}).get("results") or []:
            for metric in (result or {}).get("metrics") or []:
                key = keys.get(str((metric or {}).get("type")))
                value = (metric or {}).get("value")
                if key and isinstance(value, int | float) and not isinstance(value, bool):
                    out[key] = float(value)
    return out


def _governance(lines: list[str]) -> dict[str, Any]:
    """What the card's Governance decision section states (None where it states nothing)."""
    found: dict[str, Any] = {
        "decision": None,
        "policy": None,
        "welfare": None,
        "threshold": None,
        "decision_id": None,
    }
    for line in lines:
        if match := _DECISION.match(line):
            found["decision"], found["policy"] = match.group(1), plain(match.group(2))
        elif match := _WELFARE.match(line):
            found["welfare"], found["threshold"] = _float(match.group(1)), _float(match.group(2))
        elif match := _ENTRY_HASH.match(line):
            found["decision_id"] = match.group(1)
    return found


def _intended_use(lines: list[str]) -> list[str] | None:
    items = [plain(line[2:]) for line in lines if line.startswith("- ")]
    return items[:MAX_INTENDED_USE] or None


def _run_decision_id(run: RunDir) -> str | None:
    """The ledger hash of the run's decision as it is now (None if unreadable or unrecorded)."""
    try:
        decision = run.decision()
    except EthosError:
        return None
    ledger = decision.get("ledger") if isinstance(decision, dict) else None
    entry = ledger.get("entry_hash") if isinstance(ledger, dict) else None
    return str(entry) if entry else None


def _stale(card_id: str | None, run_id: str | None, served_id: str | None) -> str | None:
    """Which side is behind: "server" (gated again since start-up), "card", or None."""
    if run_id is not None and served_id is not None and run_id != served_id:
        return "server"
    if card_id is not None and run_id is not None and card_id != run_id:
        return "card"
    return None


def _modified_utc(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")


def card_summary(run: RunDir, served_decision_id: str | None) -> dict[str, Any]:
    """The card's summary for `/v1/model`; ``available: false`` when the run has no card.

    ``decision``, ``policy``, ``welfare``, ``threshold`` are what the card states (the decision
    it was written after); ``matches_served_decision`` compares the card's ledger hash with
    ``served_decision_id`` (None when either is unknown) and ``stale`` says which side is behind
    when they differ (see the module docstring). ``test_metrics`` come from the card's
    metadata, or from the run's metrics.json when there is no card.
    """
    config = run.config
    markdown, page = run.card_path, run.card_html_path
    summary: dict[str, Any] = {
        "available": False,
        "task": config.task,
        "data": config.data.source,
        "sensitive": list(config.data.sensitive),
        "markdown": None,
        "html": None,
        "url": None,
        "updated_utc": None,
        "matches_served_decision": None,
        "stale": None,
        "decision": None,
        "policy": None,
        "welfare": None,
        "threshold": None,
        "decision_id": None,
        "intended_use": None,
        "test_metrics": _run_test_metrics(run),
    }
    try:
        readme = markdown.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return summary
    metadata, sections = _split(readme)
    stated = _governance(sections.get("Governance decision", []))
    card_id = stated["decision_id"]
    summary.update(
        stated,
        available=True,
        markdown=str(markdown.relative_to(run.path)),
        html=page.name if page.is_file() else None,
        url=CARD_URL if page.is_file() else None,
        updated_utc=_modified_utc(markdown),
        matches_served_decision=None
        if card_id is None or served_decision_id is None
        else card_id == served_decision_id,
        stale=_stale(card_id, _run_decision_id(run), served_decision_id),
        intended_use=_intended_use(sections.get("Intended use", [])),
        test_metrics=_test_metrics(metadata, config.task) or summary["test_metrics"],
    )
    return summary


def _run_test_metrics(run: RunDir) -> dict[str, float]:
    test = run.metrics.get("test", {})
    keys = ("accuracy", "macro_f1", "auroc", "exact_match", "f1")
    return {k: float(test[k]) for k in keys if isinstance(test.get(k), int | float)}
