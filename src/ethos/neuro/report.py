"""Self-contained HTML reports: tables and figures inline (base64 PNG), nothing fetched.

A report must open on an air-gapped machine and survive being e-mailed: no external files,
styles or scripts. It is written to a temporary file and renamed, so it appears whole or not
at all. Escaping, tables, numbers, images and the page shell are :mod:`ethos.html`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ethos.html import Html, page, png_image, section, significant, table, tag
from ethos.rundir import atomic_write_text

NUMBER = partial(significant, digits=6)
"""The rows' numbers are rounded where they are made (``summary()``): shown as they are."""


@dataclass
class Section:
    """A heading, a paragraph, optional rows (list of dicts) and any number of figures."""

    heading: str
    text: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def _table(rows: list[dict[str, Any]]) -> Html:
    """One column per key of any row (rows differ: controller gains); a missing one is n/a."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return table(columns, [[r.get(c) for c in columns] for r in rows], number=NUMBER)


def _section(s: Section) -> Html:
    images = [png_image(f, s.heading, dpi=90, tight=True) for f in s.figures]
    return section(s.heading, s.text, *([_table(s.rows)] if s.rows else []), *images)


def write_html(path: Path, title: str, sections: Sequence[Section]) -> Path:
    """Write the report atomically and return its path."""
    stamp = tag("p", f"ethos neuro, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", class_="meta")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page(title, [stamp, *map(_section, sections)]))
    return path
