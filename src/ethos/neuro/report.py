"""Self-contained HTML reports: tables and figures inline (base64 PNG), nothing fetched.

A report must open on an air-gapped machine and survive being e-mailed: no external files,
styles or scripts. It is written to a temporary file and renamed, so it appears whole or not
at all.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}"
    "table{border-collapse:collapse;font-size:.9em;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f2f2f2}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%}.meta{color:#666}"
)


@dataclass
class Section:
    """A heading, a paragraph, optional rows (list of dicts) and any number of figures."""

    heading: str
    text: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def figure_to_data_uri(figure: Figure) -> str:
    """PNG of the figure as a data: URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(path: Path, title: str, sections: Sequence[Section]) -> Path:
    """Write the report atomically and return its path."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='meta'>ethos neuro, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>"
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        if section.rows:
            parts.append(_table(section.rows))
        for figure in section.figures:
            parts.append(f"<img alt='{html.escape(section.heading)}' "
                         f"src='{figure_to_data_uri(figure)}'>")  # fmt: skip
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
