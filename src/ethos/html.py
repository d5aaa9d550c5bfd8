"""One small HTML kit for ethos's self-contained pages: the audit report and its charts, the model
card, the sweep page, the serving dashboard and the neuro and genome reports.

Every page is read by a reviewer and may hold text that came from data, a client or a config (a
group name, a token, a run id), so one rule holds throughout: a value is *text* and is escaped,
unless it is :class:`Html`, markup that ethos built and vouches for, which is inserted as it is.
The builders return :class:`Html`, so they nest without being escaped twice, and nothing else
can slip through unescaped. Numbers are formatted in one way, and a missing one (None, NaN, no
number at all) always reads :data:`MISSING`. Pages have inline styles only, no script and no
network request, so they open on an air-gapped machine and can be archived as they are.

Standard library only: this sits in the bottom layer, below everything that draws a page.
"""

from __future__ import annotations

import base64
import io
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape as _escape
from typing import Any, Protocol

MISSING = "n/a"
"""How every page shows a value that is not there: None, NaN, or not a number where one belongs."""
INFINITY = "∞"
STATUS_COLOURS = {"green": "#2e7d32", "amber": "#e69b00", "red": "#c62828", "grey": "#777"}
"""The red/amber/green (and grey: not judged) of screens and gate decisions, on every page."""
DECISION_STATUS = {
    "PASS": "green",
    "REVIEW": "amber",
    "INSUFFICIENT_EVIDENCE": "amber",
    "FAIL": "red",
}
"""Each gate decision's status, so its colour on every page."""
CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;vertical-align:top}
th{background:#f2f2f2}th:first-child,td:first-child,.text{text-align:left}
.status{display:inline-block;color:#fff;border-radius:4px;padding:.1rem .5rem;font-weight:600}
.note{color:#555;font-size:.85rem}.meta{color:#666;font-size:.85rem}.figure{margin:.8rem 0}
code{font-size:.85em;background:#f4f4f4;padding:0 .2rem}img{max-width:100%}
pre{background:#f4f4f4;padding:.6rem;overflow-x:auto;font-size:.8rem}
"""
"""The styles every page shares; a page adds its own after them (later rules win)."""


class Html(str):
    """Markup that is already safe, inserted as it is; every other value is text, and escaped.

    Only ethos's own code makes one (the builders here, or a writer wrapping markup it wrote):
    wrapping text that came from outside in ``Html`` is the one way to put it on a page unescaped.
    """

    __slots__ = ()


def escape(value: object) -> Html:
    """``value`` as text, safe in an element and in an attribute quoted either way; Html as is
    (so escaping twice changes nothing)."""
    if isinstance(value, Html):
        return value
    return Html(_escape(str(value), quote=True))


def attrs(**values: object) -> Html:
    """Attributes, each `` name='value'``: ``class_`` is ``class``, other underscores hyphens;
    None and False leave one out, True writes its bare name. A value is always text (even an
    Html one: markup has no place in an attribute), so a quote cannot end it."""
    parts = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f" {name}" if value is True else f" {name}='{_escape(str(value))}'")
    return Html("".join(parts))


def tag(name: str, *children: object, **attributes: object) -> Html:
    """``<name attributes>children</name>``; children are escaped unless they are Html."""
    inner = "".join(escape(child) for child in children)
    return Html(f"<{name}{attrs(**attributes)}>{inner}</{name}>")


# --- numbers -------------------------------------------------------------------------------


def real(value: object) -> float | None:
    """``value`` as a float when it is a number to show (NumPy's too); None for None, NaN, a bool
    (True is not a count of 1) or anything else. Infinity is kept: ε of a non-private run."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _formatted(value: object, spec: str, *, scale: float = 1.0, suffix: str = "") -> str:
    number = real(value)
    if number is None:
        return MISSING
    if math.isinf(number):
        return INFINITY if number > 0 else f"-{INFINITY}"
    return f"{number * scale:{spec}}{suffix}"


def fixed(value: object, digits: int = 3) -> str:
    """A number with ``digits`` decimals (``0.500``): rates, scores and differences."""
    return _formatted(value, f".{digits}f")


def significant(value: object, digits: int = 4) -> str:
    """A number to ``digits`` significant digits (``0.0001234``, ``1235``): p-values, statistics
    whose size varies, and values rounded upstream (6 digits shows them as they are)."""
    return _formatted(value, f".{digits}g")


def percent(value: object, digits: int = 1) -> str:
    """A share as a percentage (``0.125`` reads ``12.5%``)."""
    return _formatted(value, f".{digits}f", scale=100.0, suffix="%")


Number = Callable[[Any], str]
"""How a table or :func:`show` formats a real number: :func:`fixed`, :func:`significant`, …"""


def display(value: object, number: Number = fixed) -> str:
    """Any value as plain text: None and NaN :data:`MISSING`, a bool yes/no, an integer as it is,
    another number by ``number``, anything else ``str()``."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return number(value)
    return str(value)


def show(value: object, number: Number = fixed) -> Html:
    """Any value as markup: Html as is, anything else :func:`display`-ed and escaped."""
    return value if isinstance(value, Html) else escape(display(value, number))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- blocks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """A table cell with its own class (``text``: left-aligned; ``num``: right-aligned);
    ``content`` is shown like any other cell value."""

    content: object
    class_: str | None = None


def table(
    header: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    columns: Sequence[str | None] = (),
    class_: str | None = None,
    row_headers: bool = False,
    number: Number = fixed,
) -> Html:
    """A table: a header row (none when ``header`` is empty), then ``rows``.

    Cells are shown by :func:`show` (text escaped, Html as is, numbers by ``number``, missing
    values as :data:`MISSING`); ``columns`` gives a class per column, to its header too, so a
    column and its heading align alike (a :class:`Cell` has its own); ``row_headers`` makes each
    row's first cell a ``<th>``.
    """

    def row_html(cells: Sequence[object], header_row: bool) -> str:
        return "".join(
            _cell(
                "th" if header_row or (row_headers and i == 0) else "td",
                value,
                columns[i] if i < len(columns) else None,
                number,
            )
            for i, value in enumerate(cells)
        )

    head = f"<thead><tr>{row_html(header, True)}</tr></thead>" if header else ""
    body = "".join(f"<tr>{row_html(row, False)}</tr>" for row in rows)
    return Html(f"<table{attrs(class_=class_)}>{head}<tbody>{body}</tbody></table>")


def _cell(name: str, value: object, column: str | None, number: Number) -> Html:
    if isinstance(value, Cell):
        return tag(name, show(value.content, number), class_=value.class_ or column)
    return tag(name, show(value, number), class_=column)


def badge(label: str, status: str) -> Html:
    """A label on its status's colour (a key of :data:`STATUS_COLOURS`; anything else grey)."""
    colour = STATUS_COLOURS.get(status, STATUS_COLOURS["grey"])
    return tag("span", label, class_="status", style=f"background:{colour}")


def figure(chart: Html, caption: str) -> Html:
    """A chart with its caption below it (``figure.chart`` is what the browser tests measure)."""
    return tag("figure", chart, tag("figcaption", caption, class_="note"), class_="figure chart")


def svg(title: str, width: float, height: float, parts: Iterable[str]) -> Html:
    """An inline SVG chart of ``parts`` (markup the chart drew, escaping its own text), sized in
    pixels, with ``role="img"`` and its ``title`` first, so screen readers and tests can name it."""
    w, h = f"{width:.0f}", f"{height:.0f}"
    return Html(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif"><title>{escape(title)}</title>'
        f"{''.join(parts)}</svg>"
    )


class Drawable(Protocol):
    """Anything that saves itself as an image: a Matplotlib figure (not imported here)."""

    def savefig(self, fname: Any, **kwargs: Any) -> Any: ...


def png_image(drawing: Drawable, alt: str, *, dpi: int = 100, tight: bool = False) -> Html:
    """``drawing`` as an ``<img>`` whose PNG is inside the page (a data: URI): nothing to fetch."""
    buffer = io.BytesIO()
    drawing.savefig(buffer, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Html(f"<img{attrs(alt=alt, src=f'data:image/png;base64,{data}')}>")


def section(heading: str, text: str = "", *blocks: Html) -> Html:
    """A report section: an ``<h2>``, a paragraph when there is ``text``, then ``blocks``."""
    paragraph = tag("p", text) if text else ""
    return Html(f"{tag('h2', heading)}{paragraph}{''.join(blocks)}")


def page(
    title: str,
    body: Iterable[str],
    *,
    css: str = "",
    refresh_seconds: int | None = None,
    heading: bool = True,
) -> str:
    """A whole self-contained page: doctype, charset, ``title``, :data:`CSS` then ``css``, and
    ``body`` (markup), with ``title`` as its ``<h1>`` unless ``heading`` is False (the card's
    comes from its Markdown). ``refresh_seconds`` reloads it (the live dashboard)."""
    refresh = (
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">' if refresh_seconds else ""
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{refresh}"
        f"<title>{escape(title)}</title><style>{CSS}{css}</style></head><body>"
        f"{tag('h1', title) if heading else ''}{''.join(body)}</body></html>\n"
    )
