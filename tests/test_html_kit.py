"""The HTML kit (ethos.html) and the seven writers that use it.

The kit's pieces are checked on their own (escaping, tables, numbers, the SVG wrapper, the page
shell), then every writer draws a page from a small fixture in which a hostile string stands
wherever data, a client or a config can put text: a parser must find it as text, never as markup,
and headless Chromium must find no script and make no request.
"""

from __future__ import annotations

import base64
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browser import chromium_path, open_in_chromium
from ethos.html import (
    MISSING,
    STATUS_COLOURS,
    Cell,
    Html,
    attrs,
    badge,
    clip,
    display,
    escape,
    figure,
    fixed,
    page,
    percent,
    png_image,
    real,
    section,
    show,
    significant,
    svg,
    table,
    tag,
)

HOSTILE = "<script>alert('x&y')</script> \"ü\" ε"
ESCAPED = "&lt;script&gt;alert(&#x27;x&amp;y&#x27;)&lt;/script&gt; &quot;ü&quot; ε"
SVG = "{http://www.w3.org/2000/svg}"
NAN = float("nan")


class Parsed(HTMLParser):
    """What a browser's parser sees: the tags that open, the text, the attribute values."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.values: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.values.extend(v for _, v in attributes if v is not None)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


# --- escaping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("a & b", "a &amp; b"),
        ("\"double\" 'single'", "&quot;double&quot; &#x27;single&#x27;"),
        ("&amp; is text here", "&amp;amp; is text here"),
        ("ü ε ∞ 😀 日本", "ü ε ∞ 😀 日本"),
        (0.5, "0.5"),
    ],
)
def test_escape_makes_text_of_anything(raw: object, escaped: str) -> None:
    assert escape(raw) == escaped
    assert isinstance(escape(raw), Html)


def test_escaping_twice_changes_nothing_and_markup_passes_as_it_is() -> None:
    once = escape(HOSTILE)
    assert once == ESCAPED and escape(once) == ESCAPED  # no &amp;lt;
    assert escape(Html("<b>ok</b>")) == "<b>ok</b>"
    assert Parsed(f"<p>{once}</p>").tags == ["p"]
    assert "".join(Parsed(f"<p>{once}</p>").text) == HOSTILE


def test_attribute_values_are_always_text_and_cannot_end_their_quotes() -> None:
    rendered = attrs(class_="a b", data_x=HOSTILE, hidden=True, title=None, off=False)
    assert rendered == f" class='a b' data-x='{ESCAPED}' hidden"
    assert attrs(title=Html("<b>")) == " title='&lt;b&gt;'"  # markup has no place here
    for hostile in (HOSTILE, "' onmouseover='alert(1)", '" onmouseover="alert(1)'):
        parsed = Parsed(tag("a", "x", title=hostile))
        assert parsed.values == [hostile] and parsed.tags == ["a"]


def test_tag_escapes_children_unless_they_are_markup() -> None:
    assert (
        tag("p", "<i>", Html("<b>ok</b>"), 3, class_="note")
        == "<p class='note'>&lt;i&gt;<b>ok</b>3</p>"
    )


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format_", "value", "shown"),
    [
        (fixed, 0.5, "0.500"),
        (fixed, 3, "3.000"),
        (fixed, np.float32(0.25), "0.250"),
        (fixed, None, MISSING),
        (fixed, NAN, MISSING),
        (fixed, True, MISSING),  # a bool is not a number to show
        (fixed, "0.5", MISSING),
        (fixed, math.inf, "∞"),
        (fixed, -math.inf, "-∞"),
        (lambda v: fixed(v, 1), 0.25, "0.2"),
        (significant, 0.000123456, "0.0001235"),
        (significant, 1234.5678, "1235"),
        (significant, 0.6, "0.6"),
        (significant, np.int64(7), "7"),
        (significant, np.nan, MISSING),
        (lambda v: significant(v, 6), 1234.5678, "1234.57"),
        (percent, 0.125, "12.5%"),
        (percent, 1, "100.0%"),
        (lambda v: percent(v, 0), 0.333, "33%"),
        (percent, None, MISSING),
    ],
)
def test_numbers_are_formatted_one_way_and_missing_reads_the_same(
    format_: Callable[[object], str], value: object, shown: str
) -> None:
    assert format_(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, MISSING),
        (NAN, MISSING),
        (True, "yes"),
        (False, "no"),
        (400, "400"),
        (np.int64(400), "400"),
        (0.5, "0.500"),
        ("<x>", "<x>"),
    ],
)
def test_display_shows_any_cell_value_as_text(value: object, shown: str) -> None:
    assert display(value) == shown
    assert show(value) == escape(shown)


def test_real_and_clip() -> None:
    assert real(True) is None and real(NAN) is None and real("1") is None and real(None) is None
    assert real(math.inf) == math.inf and real(np.float64(0.5)) == 0.5 and real(2) == 2.0
    assert display(0.5, significant) == "0.5"
    assert clip("abcdef", 4) == "abc…" and clip("abcd", 4) == "abcd"


# --- tables, blocks, page ------------------------------------------------------------------


def test_a_table_has_its_shape_and_escapes_every_text_cell() -> None:
    markup = table(["name", "<n>"], [[HOSTILE, 0.5], [400, None], [True, NAN]])
    root = ET.fromstring(markup)
    assert [th.text for th in root.iterfind("thead/tr/th")] == ["name", "<n>"]
    rows = [[td.text for td in tr] for tr in root.iterfind("tbody/tr")]
    assert rows == [[HOSTILE, "0.500"], ["400", MISSING], ["yes", MISSING]]
    assert ESCAPED in markup and HOSTILE not in markup


def test_table_cells_that_are_markup_are_not_escaped_and_none_twice() -> None:
    markup = table(["h"], [[Html("<b>ok</b>")], [escape("a&b")], ["a&b"]])
    assert "<td><b>ok</b></td>" in markup
    assert markup.count("<td>a&amp;b</td>") == 2 and "&amp;amp;" not in markup


def test_table_options() -> None:
    markup = table(
        ["a", "b", "c"],
        [["x", Cell(1, "num"), Cell("y")]],
        columns=["text", "text", "wide"],
        class_="points",
    )
    assert markup.startswith("<table class='points'><thead><tr><th class='text'>a</th>")
    assert "<td class='text'>x</td><td class='num'>1</td><td class='wide'>y</td>" in markup
    assert table([], [["k", "v"]], row_headers=True) == (
        "<table><tbody><tr><th>k</th><td>v</td></tr></tbody></table>"
    )
    assert "<td>0.000123</td>" in table([], [[0.000123]], number=significant)


def test_badge_figure_section_and_image() -> None:
    assert badge("PASS", "green") == (
        f"<span class='status' style='background:{STATUS_COLOURS['green']}'>PASS</span>"
    )
    assert STATUS_COLOURS["grey"] in badge("odd", "unknown")
    assert figure(Html("<svg/>"), "a < b") == (
        "<figure class='figure chart'><svg/><figcaption class='note'>a &lt; b</figcaption></figure>"
    )
    assert section("H", "", Html("<x/>")) == "<h2>H</h2><x/>"

    class Drawing:
        def savefig(self, fname: Any, **kwargs: Any) -> None:
            assert kwargs == {"format": "png", "dpi": 90, "bbox_inches": "tight"}
            fname.write(b"\x89PNG bytes")

    image = Parsed(png_image(Drawing(), HOSTILE, dpi=90, tight=True))
    alt, src = image.values
    assert image.tags == ["img"] and alt == HOSTILE
    assert base64.b64decode(src.removeprefix("data:image/png;base64,")) == b"\x89PNG bytes"


def test_the_svg_wrapper_is_valid_and_named() -> None:
    chart = svg(HOSTILE, 120.4, 80, ['<rect x="0" y="0" width="1" height="1"/>'])
    root = ET.fromstring(chart)
    assert root.tag == f"{SVG}svg"
    assert (root.get("role"), root.get("width"), root.get("height")) == ("img", "120", "80")
    assert root.get("viewBox") == "0 0 120 80"
    assert root[0].tag == f"{SVG}title" and root[0].text == HOSTILE
    assert [child.tag for child in root] == [f"{SVG}title", f"{SVG}rect"]


def test_the_page_shell_is_self_contained() -> None:
    html = page(HOSTILE, ["<p>body</p>"], css="p{color:red}")
    assert html.startswith("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>")
    assert f"<title>{ESCAPED}</title>" in html and f"<h1>{ESCAPED}</h1><p>body</p>" in html
    assert html.index("p{color:red}") > html.index("<style>")
    for forbidden in ("<script", "http", "src=", "<link", "@import", "url("):
        assert forbidden not in html.lower()
    assert "<h1>" not in page("t", [], heading=False)
    assert '<meta http-equiv="refresh" content="10">' in page("t", [], refresh_seconds=10)


# --- the seven writers ---------------------------------------------------------------------


def _audit_document() -> dict[str, Any]:
    from ethos.audit.summary import summarise

    group = {"count": 40, "selection_rate": 0.5, "tpr": 0.6, "fpr": None, "ppv": NAN}
    summary = {
        "count": 40,
        "ece": {"uniform_15": 0.04},
        "reliability": {"uniform_15": [{"count": 2, "mean_confidence": 0.3, "accuracy": 0.4}]},
    }
    audit: dict[str, Any] = {
        "meta": {"run_id": HOSTILE, "rows": 80, "data": HOSTILE},
        "informativeness": {
            "informative": True,
            "reasons": [],
            "accuracy": 0.7,
            "majority_accuracy": 0.5,
            "predicted_classes": {HOSTILE: 2},
            "rule": HOSTILE,
        },
        "fairness": {
            "race": {
                "min_group_size": 1,
                "groups": {HOSTILE: group, "B": {**group, "tpr": 0.9}},
                "disparities": {"tpr_difference": {"value": 0.1, "ci_low": 0.0, "ci_high": 0.2}},
                "four_fifths_rule": {"ratio": 0.8, "passes": True, "caveat": HOSTILE},
            }
        },
        "calibration": {"overall": summary, "groups": {"race": {HOSTILE: summary}}},
        "robustness": {
            "typos": {
                "flip_rate": 0.1,
                "n": 10,
                "worst": [{"original": HOSTILE, "perturbed": "x", "p_before": 0.2}],
            }
        },
        "explanations": {
            "method": HOSTILE,
            "examples": [{"tokens": [HOSTILE], "attributions": [0.5], "group": HOSTILE}],
            "top_tokens": {HOSTILE: [{"token": HOSTILE, "mean_attribution": 0.4, "count": 3}]},
        },
        "privacy": {"pii": {"scanned": 3, "by_entity": {HOSTILE: 1}}, "notes": [HOSTILE]},
    }
    audit["summary"] = summarise(audit)
    return audit


def _audit(_: Path) -> str:
    from ethos.audit.report import render_report

    return render_report(_audit_document())


def _charts(_: Path) -> str:
    from ethos.audit import svg as charts

    drawn = [
        charts.grouped_bars(HOSTILE, [HOSTILE, "b"], {HOSTILE: [0.2, None], "tpr": [NAN, 0.9]}),
        charts.interval_bars(HOSTILE, [(HOSTILE, 0.1, 0.0, 0.2), ("b", None, None, None)]),
        charts.reliability(HOSTILE, {HOSTILE: [(0.2, 0.3), (0.8, NAN)]}),
    ]
    for chart in drawn:  # each chart is well-formed SVG whose title is the text it was given
        root = ET.fromstring(chart)
        assert root.tag == f"{SVG}svg" and root[0].text == HOSTILE
    return page("charts", drawn)


def _card(_: Path) -> str:
    from ethos.governance.card_html import render_html

    markdown = (
        f"# Card {HOSTILE}\n\nText {HOSTILE} and `{HOSTILE}`.\n\n"
        f"| group | n |\n|---|---:|\n| `{HOSTILE}` | 3 |\n\n- {HOSTILE}\n"
    )
    return render_html(markdown, title=HOSTILE, metadata=f"license: {HOSTILE}\n")


def _sweep(_: Path) -> str:
    from ethos.sweep.grid import parse_grid
    from ethos.sweep.page import render_page
    from ethos.sweep.runner import SweepPoint, SweepResult, sweep_document

    points = [
        SweepPoint(0, {"seed": 1}, HOSTILE, "done", "run-0", f"runs/{HOSTILE}", 0.7, 0.1),
        SweepPoint(1, {"seed": 2}, "seed=2", "failed", error=HOSTILE, decision=HOSTILE),
    ]
    grid = parse_grid(["seed=[1,2]"])
    result = SweepResult(
        path=Path("."), grid=grid, policy=HOSTILE, threshold=0.6, gap_metric="g", points=points
    )
    return render_page(sweep_document(result, created=HOSTILE, source=HOSTILE))


def _dashboard(_: Path) -> str:
    from ethos.serving.dashboard import render_dashboard
    from ethos.serving.monitor import Alert, MonitorSnapshot

    history = [
        MonitorSnapshot(
            created_at=1_700_000_000.0 + 60 * i,
            n=200,
            observed_total=200 + i,
            probability_psi=0.1 * i,
            probability_histogram=(0.5, 0.5),
            reference_probability_histogram=(0.4, 0.6),
            group_positive_rates={HOSTILE: 0.5, "b": 0.3},
            group_counts={HOSTILE: 60, "b": 40},
        )
        for i in range(3)
    ]
    return render_dashboard(
        model={"model_id": HOSTILE, "decision": HOSTILE, "policy": HOSTILE, "welfare": 0.7},
        snapshot=history[-1],
        history=history,
        alerts=[Alert(HOSTILE, 0.4, 0.25, HOSTILE, 1_700_000_100.0)],
        generated_at=datetime(2026, 1, 2, tzinfo=UTC),
    )


def _figure() -> Any:
    from matplotlib.figure import Figure

    drawn = Figure(figsize=(1, 1))
    drawn.add_subplot().plot([0, 1], [0, 1])
    return drawn


def _neuro(folder: Path) -> str:
    from ethos.neuro.report import Section, write_html

    rows = [{"decoder": HOSTILE, "p": None}, {"decoder": "b", HOSTILE: 0.5}]
    path = write_html(
        folder / "neuro.html", HOSTILE, [Section(HOSTILE, HOSTILE, rows, [_figure()])]
    )
    return path.read_text(encoding="utf-8")


def _genome(_: Path) -> str:
    import pandas as pd

    from ethos.genome.report import Section, render_html

    frame = pd.DataFrame({"name": [HOSTILE], "value": [NAN]})
    return render_html(HOSTILE, [Section(HOSTILE, HOSTILE, frame, [_figure()])])


WRITERS: dict[str, Callable[[Path], str]] = {
    "audit report": _audit,
    "audit charts": _charts,
    "model card": _card,
    "sweep page": _sweep,
    "serving dashboard": _dashboard,
    "neuro report": _neuro,
    "genome report": _genome,
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_page_shows_hostile_text_as_text(writer: str, tmp_path: Path) -> None:
    html = WRITERS[writer](tmp_path)
    assert "<script" not in html.lower() and HOSTILE not in html
    assert not re.search(r"<[^>]*\son\w+=", html)  # no event-handler attribute anywhere
    assert ESCAPED in html  # shown, escaped once: neither dropped nor double-escaped
    assert "&amp;lt;" not in html
    parsed = Parsed(html)
    assert "script" not in parsed.tags
    assert any(HOSTILE in text for text in parsed.text)  # a parser reads it back as the text
    assert html.startswith("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>")


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_page_runs_nothing_and_fetches_nothing_in_chromium(
    writer: str, tmp_path: Path
) -> None:
    chromium_path()  # skip before anything is drawn when the browser is missing
    path = tmp_path / "page.html"
    path.write_text(WRITERS[writer](tmp_path), encoding="utf-8")
    with open_in_chromium(path.as_uri(), offline=True) as visit:
        scripts = visit.page.evaluate("document.scripts.length")
        text = visit.page.text_content("body")
    assert scripts == 0 and visit.problems == [] and visit.blocked == []
    assert visit.requests == [path.as_uri()]
    assert "alert('x&y')" in text  # the hostile string is on the page, as text


def test_offline_chromium_aborts_what_would_leave_the_machine(tmp_path: Path) -> None:
    chromium_path()
    path = tmp_path / "leaky.html"
    path.write_text(page("leaky", ["<img alt='x' src='http://192.0.2.1/x.png'>"]))
    with open_in_chromium(path.as_uri(), offline=True) as visit:
        visit.page.wait_for_load_state("load")
    assert visit.blocked == ["http://192.0.2.1/x.png"]
