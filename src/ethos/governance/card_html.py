"""The model card as one self-contained HTML page: the card's Markdown, converted, inline CSS.

The converter covers the Markdown subset :mod:`ethos.governance.card` writes, nothing more:
``#``/``##``/``###`` headings, paragraphs, ``- `` lists, GitHub pipe tables (``\\|`` is a pipe
inside a cell, as in GFM), code spans of any backtick length, ``**bold**`` and backslash escapes of
ASCII punctuation. Everything else is shown as text, HTML-escaped. There is no script and no network
request, so the page can be attached to a review or archived as it is. Escaping, tables and the
page shell are :mod:`ethos.html`'s.
"""

from __future__ import annotations

import re
import string

from ethos.html import Cell, Html, escape, page, table, tag

CSS = "td,th{text-align:left}td.num{text-align:right}"
"""The card's own styles, after :data:`ethos.html.CSS`: cells read as text unless numeric."""
PUNCTUATION = set(string.punctuation)
_NUMBER = re.compile(r"^[-+]?\d[\d.,]*(e[-+]?\d+)?%?$|^n/a$")
_CODE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def inline(text: str) -> str:
    """One line of Markdown (the subset above) as HTML."""
    out: list[str] = []
    strong = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in PUNCTUATION:
            out.append(escape(text[i + 1]))
            i += 2
        elif char == "`":
            span = _CODE.match(text, i)
            if span is None:  # no closing run of the same length: the backticks are text
                run = len(text[i:]) - len(text[i:].lstrip("`"))
                out.append(escape(text[i : i + run]))
                i += run
                continue
            code = span.group(2)
            if code.startswith(" ") and code.endswith(" ") and code.strip():
                code = code[1:-1]
            out.append(f"<code>{escape(code)}</code>")
            i = span.end()
        elif text.startswith("**", i):
            out.append("</strong>" if strong else "<strong>")
            strong = not strong
            i += 2
        else:
            out.append(escape(char))
            i += 1
    if strong:
        out.append("</strong>")
    return "".join(out)


def split_row(line: str) -> list[str]:
    """A pipe-table row's cells; ``\\|`` is a pipe in the cell, other escapes are kept."""
    cells: list[str] = []
    current: list[str] = []
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            current.append("|" if body[i + 1] == "|" else body[i : i + 2])
            i += 2
        elif body[i] == "|":
            cells.append("".join(current).strip())
            current = []
            i += 1
        else:
            current.append(body[i])
            i += 1
    if "".join(current).strip():
        cells.append("".join(current).strip())
    return cells


def _cell(text: str) -> Cell:
    """A body cell's Markdown as markup, right-aligned when it reads as a number."""
    return Cell(Html(inline(text)), "num" if _NUMBER.match(text.strip()) else None)


def _table(lines: list[str]) -> Html:
    header = [Html(inline(cell)) for cell in split_row(lines[0])]
    return table(header, [[_cell(c) for c in split_row(line)] for line in lines[2:]])


def markdown_to_html(markdown: str) -> str:
    """The body HTML of ``markdown`` (headings, paragraphs, lists, tables)."""
    lines = markdown.splitlines()
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append(f"<p>{inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        heading = re.match(r"^(#{1,3}) (.*)$", line)
        if not line.strip():
            flush()
            i += 1
        elif heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
            i += 1
        elif line.startswith("|") and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1]):
            flush()
            end = i + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            out.append(_table(lines[i:end]))
            i = end
        elif line.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{inline(lines[i][2:])}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        else:
            paragraph.append(line.strip())
            i += 1
    flush()
    return "\n".join(out)


def render_html(markdown: str, *, title: str, metadata: str) -> str:
    """A whole page: the converted card (its own ``#`` heading first), then its YAML metadata
    block shown as text."""
    body = [
        markdown_to_html(markdown),
        "\n<h2>Metadata</h2><p>The YAML block at the top of <code>model/README.md</code> "
        "(Hugging Face model card metadata):</p>",
        tag("pre", metadata),
    ]
    return page(title, body, css=CSS, heading=False)
