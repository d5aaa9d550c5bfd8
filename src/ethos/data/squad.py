"""Extractive question answering data: SQuAD v1.1 / v2.0 JSON into a :class:`QADataset`.

The file layout is the one published with SQuAD (Rajpurkar et al. 2016, 2018)::

    {"version": "1.1", "data": [{"title": "...", "paragraphs": [{"context": "...",
        "qas": [{"id": "...", "question": "...", "answers": [{"text": "...", "answer_start": 0}],
                 "is_impossible": false}]}]}]}

Every answer is checked to be the exact character span ``context[answer_start:answer_start +
len(text)]``, because a shifted offset silently teaches the model the wrong span. The split keeps
all questions about one paragraph in the same part (paragraphs, not questions, are split), so no
context is seen in training and again in evaluation. Paragraphs are identified by a hash of their
text, so the split does not depend on the order of the file and identical contexts stay together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ethos.data.fingerprint import fingerprint_rows
from ethos.data.split import PARTS, stratified_split
from ethos.data.tables import _decode
from ethos.errors import DataError
from ethos.hashing import file_sha256

SQUAD_TINY_PATH = Path(__file__).resolve().parents[1] / "examples" / "data" / "squad_tiny.json"
"""The bundled SQuAD v1.1-format sample (12 paragraphs, 60 questions) written for ethos."""

Answer = tuple[str, int]
"""One gold answer: its text and the character offset where it starts in the context."""


@dataclass(frozen=True, eq=False, repr=False)
class QADataset:
    """Questions with their contexts and gold spans. Sequences are aligned by position.

    ``contexts[i]`` is the paragraph question ``i`` is asked about (the same string object is
    shared by all questions of a paragraph), ``answers[i]`` its gold answers as ``(text,
    answer_start)`` pairs (empty for a SQuAD 2.0 unanswerable question), ``paragraph_ids[i]``
    the hash that groups questions of one paragraph, and ``split[i]`` its part.
    """

    name: str
    source: str
    version: str
    ids: np.ndarray
    questions: tuple[str, ...]
    contexts: tuple[str, ...]
    answers: tuple[tuple[Answer, ...], ...]
    is_impossible: np.ndarray
    titles: tuple[str, ...]
    paragraph_ids: np.ndarray
    split: np.ndarray
    fingerprint: str
    source_sha256: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_paragraphs(self) -> int:
        return len(set(self.paragraph_ids.tolist()))

    def part(self, name: str) -> QADataset:
        """The questions of one split part (train, validation or test), same fingerprint."""
        if name not in PARTS:
            raise ValueError(f"unknown split part {name!r}; expected one of {PARTS}")
        keep = np.flatnonzero(self.split == name)
        return QADataset(
            name=f"{self.name}[{name}]",
            source=self.source,
            version=self.version,
            ids=self.ids[keep],
            questions=tuple(self.questions[i] for i in keep),
            contexts=tuple(self.contexts[i] for i in keep),
            answers=tuple(self.answers[i] for i in keep),
            is_impossible=self.is_impossible[keep],
            titles=tuple(self.titles[i] for i in keep),
            paragraph_ids=self.paragraph_ids[keep],
            split=self.split[keep],
            fingerprint=self.fingerprint,
            source_sha256=self.source_sha256,
        )

    def references(self) -> dict[str, list[str]]:
        """Gold answer texts by question id, the shape :func:`squad_scores` expects."""
        return {
            str(qid): [text for text, _ in answers]
            for qid, answers in zip(self.ids, self.answers, strict=True)
        }

    def summary(self) -> dict[str, Any]:
        """The facts the manifest records about the data."""
        return {
            "name": self.name,
            "source": self.source,
            "source_sha256": self.source_sha256,
            "format": f"squad-{self.version}",
            "questions": len(self),
            "paragraphs": self.n_paragraphs,
            "unanswerable": int(self.is_impossible.sum()),
            "fingerprint": self.fingerprint,
            "split_counts": {p: int((self.split == p).sum()) for p in PARTS},
            "split_paragraphs": {
                p: len(set(self.paragraph_ids[self.split == p].tolist())) for p in PARTS
            },
        }

    def __repr__(self) -> str:
        head = (
            f"<QADataset {self.name!r}: {len(self)} questions, {self.n_paragraphs} paragraphs, "
            f"{int(self.is_impossible.sum())} unanswerable, fingerprint {self.fingerprint[:12]}>"
        )
        summary = self.summary()
        parts = ", ".join(
            f"{p} {summary['split_counts'][p]} ({summary['split_paragraphs'][p]} paragraphs)"
            for p in PARTS
        )
        return "\n".join(
            [head, f"  split:  {parts}", f"  source: {self.source} (SQuAD v{self.version})"]
        )


def load_squad(
    path: str | Path,
    *,
    validation: float = 0.15,
    test: float = 0.15,
    seed: int = 13,
    part: str | None = None,
    name: str | None = None,
) -> QADataset:
    """Read a SQuAD v1.1 or v2.0 JSON file (optionally ``.gz``) and split it by paragraph.

    ``validation`` and ``test`` are fractions of paragraphs. ``part`` puts every question into one
    part instead of splitting (e.g. ``part="validation"`` for the official dev file). Raises
    :class:`DataError` naming the JSON path of anything malformed.
    """
    path = Path(path)
    if part is not None and part not in PARTS:
        raise DataError(f"unknown split part {part!r}", hint=f"use one of {', '.join(PARTS)}")
    for label, value in (("validation", validation), ("test", test)):
        if not 0.0 <= value < 1.0:
            raise DataError(
                f"{label} fraction {value} is outside [0, 1)",
                hint="give the share of paragraphs for that part, e.g. 0.15",
            )
    if validation + test >= 1.0:
        raise DataError(
            f"validation ({validation}) + test ({test}) leave no paragraphs for training",
            hint="make the two fractions add up to less than 1",
        )
    document = _read_json(path)
    version, rows = _parse(document, path)

    ids = np.array([r.qid for r in rows], dtype=object)
    paragraph_ids = np.array([r.paragraph_id for r in rows], dtype=object)
    split = _split(paragraph_ids, validation=validation, test=test, seed=seed, part=part)
    answers_json = [json.dumps(r.answers, ensure_ascii=False) for r in rows]
    fingerprint = fingerprint_rows(
        {
            "id": ids.tolist(),
            "question": [r.question for r in rows],
            "context": [r.context for r in rows],
            "answers": answers_json,
            "is_impossible": [r.impossible for r in rows],
            "title": [r.title for r in rows],
            "split": split.tolist(),
        },
        id_column="id",
    )
    return QADataset(
        name=name or path.name.split(".")[0],
        source=str(path),
        version=version,
        ids=ids,
        questions=tuple(r.question for r in rows),
        contexts=tuple(r.context for r in rows),
        answers=tuple(r.answers for r in rows),
        is_impossible=np.array([r.impossible for r in rows], dtype=bool),
        titles=tuple(r.title for r in rows),
        paragraph_ids=paragraph_ids,
        split=split,
        fingerprint=fingerprint,
        source_sha256=file_sha256(str(path)),
    )


@dataclass(frozen=True)
class _Row:
    qid: str
    question: str
    context: str
    answers: tuple[Answer, ...]
    impossible: bool
    title: str
    paragraph_id: str


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise DataError(
            f"SQuAD file {path} does not exist",
            hint="check the path (relative paths start at the current folder or the config's)",
        )
    if not path.is_file():
        raise DataError(f"SQuAD source {path} is not a regular file", hint="point at a .json file")
    text = _decode(path, "utf-8")
    if not text.strip():
        raise DataError(f"SQuAD file {path} is empty", hint="check that the file is complete")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            hint="a SQuAD file is one JSON object; check the file is complete and not JSONL",
        ) from None
    except RecursionError:
        raise DataError(f"{path} is nested too deeply to read", hint="check the file") from None


_LAYOUT_HINT = (
    'expected {"version": ..., "data": [{"title": ..., "paragraphs": [{"context": ..., '
    '"qas": [{"id": ..., "question": ..., "answers": [{"text": ..., "answer_start": ...}]}]}]}]}'
)


def _wrong(path: Path, where: str, what: str) -> DataError:
    return DataError(f"{path}: {where} {what}", hint=_LAYOUT_HINT)


def _field(obj: dict[str, Any], key: str, kind: type, path: Path, where: str) -> Any:
    if key not in obj:
        raise _wrong(path, where, f"has no {key!r} field")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _wrong(
            path, f"{where}.{key}", f"is a JSON {_json_type(value)}, expected {_json_name(kind)}"
        )
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return _json_name(type(value))


def _json_name(kind: type) -> str:
    names = {dict: "object", list: "array", str: "string", int: "integer", float: "number"}
    return names.get(kind, kind.__name__)


def _objects(items: list[Any], path: Path, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for index, item in enumerate(items):
        here = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise _wrong(path, here, f"is a JSON {_json_type(item)}, expected object")
        yield here, item


def _parse(document: Any, path: Path) -> tuple[str, list[_Row]]:
    if not isinstance(document, dict):
        raise _wrong(path, "the top level", f"is a JSON {_json_type(document)}, expected object")
    version = str(document.get("version", "unknown"))
    articles = _field(document, "data", list, path, "the top level")
    rows: list[_Row] = []
    seen: dict[str, str] = {}
    for where_a, article in _objects(articles, path, "data"):
        title = article.get("title", "")
        if not isinstance(title, str):
            raise _wrong(path, f"{where_a}.title", f"is a JSON {_json_type(title)}, not a string")
        paragraphs = _field(article, "paragraphs", list, path, where_a)
        for where_p, paragraph in _objects(paragraphs, path, f"{where_a}.paragraphs"):
            context = _field(paragraph, "context", str, path, where_p)
            if not context.strip():
                raise _wrong(path, f"{where_p}.context", "is empty")
            paragraph_id = hashlib.sha256(context.encode("utf-8")).hexdigest()[:16]
            qas = _field(paragraph, "qas", list, path, where_p)
            for where_q, qa in _objects(qas, path, f"{where_p}.qas"):
                row = _parse_question(qa, context, title, paragraph_id, path, where_q)
                if row.qid in seen:
                    raise DataError(
                        f"{path}: question id {row.qid!r} is used twice, at {seen[row.qid]} and "
                        f"{where_q}",
                        hint="give every question a unique id; predictions are matched by id",
                    )
                seen[row.qid] = where_q
                rows.append(row)
    if not rows:
        raise DataError(
            f"{path} contains no questions",
            hint="check that data[*].paragraphs[*].qas lists are filled in",
        )
    return version, rows


def _parse_question(
    qa: dict[str, Any], context: str, title: str, paragraph_id: str, path: Path, where: str
) -> _Row:
    qid = _field(qa, "id", str, path, where)
    if not qid.strip():
        raise _wrong(path, f"{where}.id", "is empty")
    question = _field(qa, "question", str, path, where)
    if not question.strip():
        raise _wrong(path, f"{where}.question", f"(id {qid!r}) is empty")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise _wrong(
            path, f"{where}.is_impossible", f"is a JSON {_json_type(impossible)}, not true/false"
        )
    raw_answers = _field(qa, "answers", list, path, where)
    answers: list[Answer] = []
    for where_ans, answer in _objects(raw_answers, path, f"{where}.answers"):
        text = _field(answer, "text", str, path, where_ans)
        start = _field(answer, "answer_start", int, path, where_ans)
        if not text:
            raise _wrong(path, f"{where_ans}.text", f"(question {qid!r}) is empty")
        if start < 0 or context[start : start + len(text)] != text:
            raise DataError(
                f"{path}: {where_ans} (question {qid!r}) says the answer {text!r} starts at "
                f"character {start}, but the context there reads "
                f"{context[max(start, 0) : max(start, 0) + len(text)]!r}",
                hint=_where_instead(context, text),
            )
        answers.append((text, start))
    if impossible and answers:
        raise DataError(
            f"{path}: {where} (question {qid!r}) is marked is_impossible but has answers",
            hint="SQuAD 2.0 unanswerable questions have an empty answers list "
            "(put candidate spans under plausible_answers)",
        )
    if not impossible and not answers:
        raise DataError(
            f"{path}: {where} (question {qid!r}) has no answers",
            hint="add its answer span, or mark it 'is_impossible': true (SQuAD 2.0)",
        )
    return _Row(qid, question, context, tuple(answers), impossible, title, paragraph_id)


def _where_instead(context: str, text: str) -> str:
    found = [i for i in range(len(context)) if context.startswith(text, i)]
    if not found:
        return "the answer text does not occur in its context at all; answers must be exact spans"
    shown = ", ".join(str(i) for i in found[:5])
    return f"the text occurs at character {shown}; set answer_start to the right one"


def _split(
    paragraph_ids: np.ndarray, *, validation: float, test: float, seed: int, part: str | None
) -> np.ndarray:
    if part is not None:
        return np.full(len(paragraph_ids), part, dtype=object)
    unique = sorted(set(paragraph_ids.tolist()))
    parts = stratified_split(
        unique, ["all"] * len(unique), validation=validation, test=test, seed=seed
    )
    # stratified_split puts at least one row into every part; a fraction of 0 means "none".
    for label, value in (("validation", validation), ("test", test)):
        if value == 0.0:
            parts[parts == label] = "train"
    by_paragraph = dict(zip(unique, parts, strict=True))
    return np.array([by_paragraph[p] for p in paragraph_ids], dtype=object)
