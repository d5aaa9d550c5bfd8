"""Every error hint that sends a user to the docs names a file and a section that exist.

A policy error once said "see docs: metric paths", and there was no such section anywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ethos.errors import ConfigError
from ethos.governance.metric_paths import check_metric_path

REPO = Path(__file__).resolve().parents[1]
POINTER = re.compile(r"(docs/[\w.-]+\.md), section '([^']+)'")


def pointers() -> list[tuple[str, str, str]]:
    found = []
    for source in sorted((REPO / "src" / "ethos").rglob("*.py")):
        for doc, section in POINTER.findall(source.read_text(encoding="utf-8")):
            found.append((source.name, doc, section))
    return found


def test_hints_point_at_sections_that_exist() -> None:
    found = pointers()
    assert found, "no hint points at the docs any more; drop this test or the pattern"
    for source, doc, section in found:
        path = REPO / doc
        assert path.is_file(), f"{source} points at {doc}, which does not exist"
        headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
        assert section in headings, f"{source} points at '{section}' in {doc}: not a heading"


def test_an_unknown_metric_names_the_docs_section() -> None:
    with pytest.raises(ConfigError) as raised:
        check_metric_path("fairness.race.disparities.made_up_gap", "constraint 1", "p.yaml")
    assert "docs/governance.md, section 'Metric paths'" in str(raised.value)
