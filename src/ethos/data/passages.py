"""Passages for a knowledge base: read, PII-scrubbed, cut into overlapping word windows.

A source is one of

* a table (CSV, JSONL or Parquet, read by :func:`ethos.data.tables.read_table`) with an id column
  and a text column (``id_field``, ``text_field``), one passage per row;
* a folder of ``.txt`` files (UTF-8), one passage per file, its id the file's path inside the
  folder without ``.txt``;
* ``pubmedqa``: every bundled PubMedQA context, the expert-labelled set (PQA-L) and the
  artificially labelled subset (PQA-A), one passage per abstract, its id the bundled row id
  (``pqal-000``, ``pqaa-000``; the same ids :func:`ethos.datasets.pubmedqa` gives, so a question
  knows its gold passage) and its ``source`` the set. The ``Context (n):`` labels that the
  bundled copy puts before each abstract section are removed: they are formatting, not abstract.

**Chunking is by words, not by the encoder's tokens.** A passage is cut into windows of
``chunk_words`` whitespace-separated words, each starting ``chunk_words - overlap`` words after
the last, the final window ending at the passage's end; chunk ``n`` of passage ``p`` has id
``p#n``, and its text is the original text from its first word to its last (line breaks kept).
Words keep the passages independent of any tokenizer: the same chunks (and the same fingerprint)
serve BM25 and every dense encoder, and the data layer needs no model. The cost is that a window's
token count varies; the default (96 words, 24 overlap) is sized for all-MiniLM-L6-v2's 256-token
limit on PubMedQA, measured on its 1,000 abstracts (about 1.6 tokens a word; whole, 77% of them
exceed 256 tokens): 2,937 windows, median 142 and p99 228 tokens, 11 (0.4%) over 256; 128-word
windows had p99 284 and 3.6% over. The encoder counts and records the windows it truncates.
With ``chunking=False`` each passage is one chunk whose id is the passage id, and a passage longer
than ``chunk_words`` is refused, not cut silently.

**PII** is masked (``<PERSON>``, ``<EMAIL_ADDRESS>``, ...) by :mod:`ethos.text.pii`, the one
analyzer, before chunking (so an entity is never split across two windows), unless
``scrub_pii=False``; what was masked is counted by entity type.

**The fingerprint** is :func:`ethos.data.fingerprint.fingerprint_rows` over the chunks' (id, text)
after scrubbing and chunking: it changes when a passage's text, the set of passages or the
chunking changes, and not when rows are reordered.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ethos.errors import ConfigError, DataError, listed

PUBMEDQA = "pubmedqa"
"""The source name of the bundled PubMedQA contexts."""

DEFAULT_CHUNK_WORDS = 96
DEFAULT_OVERLAP = 24
CHUNK_SEPARATOR = "#"

_WORD = re.compile(r"\S+")
_PUBMEDQA_LABEL = re.compile(r"^Context \(\d+\): ", flags=re.MULTILINE)

COLUMNS = ("id", "passage_id", "chunk", "text", "source", "start", "end")
"""The columns of :meth:`Passages.frame`: chunk id, passage id, chunk number, text, the
passage's source (file, set), and the chunk's character span in the (scrubbed) passage."""


@dataclass(frozen=True)
class Chunking:
    """How passages become chunks: windows of ``words`` words overlapping by ``overlap``, or
    (``enabled=False``) one chunk per passage, refusing passages longer than ``words``."""

    enabled: bool = True
    words: int = DEFAULT_CHUNK_WORDS
    overlap: int = DEFAULT_OVERLAP

    def __post_init__(self) -> None:
        if self.words < 1:
            raise ConfigError(
                f"chunk size must be at least 1 word, got {self.words}",
                hint="pass --chunk-words N with N >= 1 (default 96)",
            )
        if self.enabled and not 0 <= self.overlap < self.words:
            raise ConfigError(
                f"chunk overlap must be at least 0 and below the chunk size ({self.words} words), "
                f"got {self.overlap}",
                hint="pass --overlap M with 0 <= M < --chunk-words",
            )

    def describe(self) -> dict[str, Any]:
        if not self.enabled:
            return {"mode": "off", "max_words": self.words}
        return {"mode": "words", "words": self.words, "overlap": self.overlap}

    def __str__(self) -> str:
        if not self.enabled:
            return f"no chunking, at most {self.words} words a passage"
        return f"{self.words}-word windows overlapping by {self.overlap}"


@dataclass(frozen=True)
class Passages:
    """Chunks ready to index: parallel columns, one entry per chunk, chunks of a passage adjacent
    and in order."""

    ids: tuple[str, ...]
    passage_ids: tuple[str, ...]
    chunks: tuple[int, ...]
    texts: tuple[str, ...]
    sources: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    fingerprint: str
    chunking: Chunking
    source: str
    passage_count: int
    pii: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def frame(self) -> pd.DataFrame:
        """The chunks as a table with :data:`COLUMNS`."""
        return pd.DataFrame(
            {
                "id": list(self.ids),
                "passage_id": list(self.passage_ids),
                "chunk": list(self.chunks),
                "text": list(self.texts),
                "source": list(self.sources),
                "start": list(self.starts),
                "end": list(self.ends),
            }
        )

    def __repr__(self) -> str:
        return (
            f"Passages: {self.passage_count} passages -> {len(self)} chunks from {self.source} "
            f"({self.chunking}); fingerprint {self.fingerprint[:12]}"
        )


def passages_fingerprint(ids: Sequence[str], texts: Sequence[str]) -> str:
    """The fingerprint of chunks: sha256 over their (id, text) rows, ordered by id."""
    from ethos.data.fingerprint import fingerprint_rows

    return fingerprint_rows({"id": list(ids), "text": list(texts)}, id_column="id")


def load_passages(
    source: str | Path,
    *,
    id_field: str = "id",
    text_field: str = "text",
    chunking: Chunking | None = None,
    scrub_pii: bool = True,
    progress: bool = False,
) -> Passages:
    """Read ``source`` (a table, a folder of .txt files or ``pubmedqa``), scrub and chunk it."""
    chunking = chunking or Chunking()
    ids, texts, sources, label = _read_source(source, id_field=id_field, text_field=text_field)
    _check_passages(ids, texts, label)
    pii: dict[str, Any] = {"scrubbed": False}
    if scrub_pii:
        texts, pii = _scrub(texts, progress=progress)
    return chunk_passages(ids, texts, sources, chunking=chunking, source=label, pii=pii)


def chunk_passages(
    ids: Sequence[str],
    texts: Sequence[str],
    sources: Sequence[str] | None = None,
    *,
    chunking: Chunking | None = None,
    source: str = "passages",
    pii: dict[str, Any] | None = None,
) -> Passages:
    """Chunk passages already read (and scrubbed, if they need it) and fingerprint the chunks."""
    chunking = chunking or Chunking()
    ids = [str(i) for i in ids]
    texts = [str(t) for t in texts]
    _check_passages(ids, texts, source)
    sources = [str(s) for s in sources] if sources is not None else [source] * len(ids)
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    too_long: list[str] = []
    for pid, text, origin in zip(ids, texts, sources, strict=True):
        spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        if not chunking.enabled:
            if len(spans) > chunking.words:
                too_long.append(f"{pid} ({len(spans)} words)")
            pieces = [(pid, 0, text, 0, len(text))]
        else:
            pieces = []
            for n, (a, b) in enumerate(_windows(len(spans), chunking)):
                start, end = spans[a][0], spans[b - 1][1]
                pieces.append((f"{pid}{CHUNK_SEPARATOR}{n}", n, text[start:end], start, end))
        for chunk_id, number, piece, start, end in pieces:
            for name, value in zip(
                COLUMNS, (chunk_id, pid, number, piece, origin, start, end), strict=True
            ):
                columns[name].append(value)
    if too_long:
        raise DataError(
            f"{len(too_long)} passage(s) of {source} are longer than the {chunking.words}-word "
            f"limit with chunking off: {listed(too_long)}",
            hint="turn chunking on (drop --no-chunking), raise --chunk-words, or split those "
            "passages yourself",
        )
    duplicated = [k for k, n in Counter(columns["id"]).items() if n > 1]
    if duplicated:
        raise DataError(
            f"chunk ids of {source} collide: {listed(duplicated)}",
            hint=f"passage ids may not end in '{CHUNK_SEPARATOR}<number>' when another passage "
            "has that id without it",
        )
    return Passages(
        ids=tuple(columns["id"]),
        passage_ids=tuple(columns["passage_id"]),
        chunks=tuple(columns["chunk"]),
        texts=tuple(columns["text"]),
        sources=tuple(columns["source"]),
        starts=tuple(columns["start"]),
        ends=tuple(columns["end"]),
        fingerprint=passages_fingerprint(columns["id"], columns["text"]),
        chunking=chunking,
        source=source,
        passage_count=len(ids),
        pii=pii or {"scrubbed": False},
    )


def _windows(words: int, chunking: Chunking) -> list[tuple[int, int]]:
    """Word index ranges [a, b) of the windows over ``words`` words (at least one word each)."""
    step = chunking.words - chunking.overlap
    out = []
    start = 0
    while True:
        out.append((start, min(start + chunking.words, words)))
        if start + chunking.words >= words:
            return out
        start += step


def _read_source(
    source: str | Path, *, id_field: str, text_field: str
) -> tuple[list[str], list[str], list[str], str]:
    """(ids, texts, per-passage source, a label for the whole source)."""
    if str(source) == PUBMEDQA and not Path(source).exists():
        return (*_pubmedqa(), PUBMEDQA)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"passage source {path} does not exist",
            hint=f"pass a CSV, JSONL or Parquet file, a folder of .txt files, or '{PUBMEDQA}'",
        )
    if path.is_dir():
        ids, texts, sources = _text_folder(path)
        return ids, texts, sources, str(path)
    from ethos.data.tables import read_table

    table = read_table(path)
    missing = [name for name in (id_field, text_field) if name not in table.columns]
    if missing:
        raise DataError(
            f"{path} has no column {listed(missing)} "
            f"(its columns: {listed([str(c) for c in table.columns], 8)})",
            hint="name the id and text columns with --id-field and --text-field",
        )
    blank = table[text_field].isna() | (table[text_field].astype(str).str.strip() == "")
    if blank.any():
        shown = [str(v) for v in table.loc[blank, id_field]]
        raise DataError(
            f"{int(blank.sum())} passage(s) of {path} have no text: {listed(shown)}",
            hint=f"fill or drop the empty '{text_field}' cells",
        )
    if table[id_field].isna().any():
        raise DataError(
            f"{int(table[id_field].isna().sum())} passage(s) of {path} have no id",
            hint=f"give every row an '{id_field}'",
        )
    ids = [str(v) for v in table[id_field]]
    return ids, [str(v) for v in table[text_field]], [path.name] * len(ids), str(path)


def _text_folder(folder: Path) -> tuple[list[str], list[str], list[str]]:
    files = sorted(p for p in folder.rglob("*.txt") if p.is_file())
    if not files:
        raise DataError(
            f"passage folder {folder} has no .txt files",
            hint="put one passage per .txt file (UTF-8) in the folder",
        )
    ids, texts = [], []
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path} is not UTF-8 text (byte {exc.start})",
                hint="save the file as UTF-8",
            ) from None
        ids.append(path.relative_to(folder).with_suffix("").as_posix())
    return ids, texts, [f"{i}.txt" for i in ids]


def _pubmedqa() -> tuple[list[str], list[str], list[str]]:
    from ethos.datasets import pubmedqa, pubmedqa_artificial

    ids: list[str] = []
    texts: list[str] = []
    sources: list[str] = []
    for name, loader in (
        ("pubmedqa_expert", pubmedqa),
        ("pubmedqa_artificial", pubmedqa_artificial),
    ):
        table = loader()
        ids += [str(i) for i in table["id"]]
        texts += [pubmedqa_context(str(t)) for t in table["passage"]]
        sources += [name] * len(table)
    return ids, texts, sources


def pubmedqa_context(passage: str) -> str:
    """A bundled PubMedQA passage without its ``Context (n):`` section labels."""
    return _PUBMEDQA_LABEL.sub("", passage).strip()


def _check_passages(ids: Sequence[str], texts: Sequence[str], label: str) -> None:
    if len(ids) == 0:
        raise DataError(
            f"passage source {label} is empty: nothing to index",
            hint="give a table with at least one row, or a folder with at least one .txt file",
        )
    empty = [i for i, t in zip(ids, texts, strict=True) if not str(t).strip()]
    if empty:
        raise DataError(
            f"{len(empty)} passage(s) of {label} have no text: {listed(empty)}",
            hint="remove the empty passages (or files)",
        )
    duplicated = [k for k, n in Counter(ids).items() if n > 1]
    if duplicated:
        raise DataError(
            f"passage ids of {label} are not unique: {listed(duplicated)}",
            hint="give every passage its own id",
        )


def _scrub(texts: Sequence[str], *, progress: bool) -> tuple[list[str], dict[str, Any]]:
    from ethos.text.pii import count_entities, find_pii, mask_text, versions

    found = find_pii(texts, progress=progress)
    masked = [mask_text(t, spans) for t, spans in zip(texts, found, strict=True)]
    return masked, {
        "scrubbed": True,
        "passages_masked": sum(1 for spans in found if spans),
        "by_entity": count_entities(found),
        "versions": versions(),
    }
