"""Grounded answering: retrieve passages from a knowledge base, read the best, cite, or abstain.

A grounded run (a config with a ``grounding:`` section) is a classifier over (question, passage)
pairs — the PubMedQA yes/no/maybe reader — trained on each question's gold passage. To answer a
new question :class:`GroundedAnswerer`

1. encodes it with the knowledge base's own encoder (refused if the vector space differs),
2. ranks passages by their best chunk's cosine similarity and keeps the top ``k`` as citations,
3. abstains ("not in the knowledge base") when the best similarity is below the run's calibrated
   threshold (:mod:`ethos.stats.abstention`: split conformal on the validation questions), and
4. otherwise has the run's reader read the question with the best passage, rebuilt whole from
   its chunks, as the reader was trained on whole passages.

**The knowledge base is part of the run's identity.** Training records its ``kb_sha256`` (passage
fingerprint, encoder vector space, vectors) in the manifest and the "run" ledger entry;
:meth:`GroundedAnswerer.from_run` refuses a knowledge base whose hash is not the recorded one, so
a run is never served (or audited) over evidence it was not gated with: editing one passage
means a new run, audited and gated again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ethos.errors import ModelError
from ethos.models.embedding import SentenceEncoder
from ethos.models.knowledge_base import KnowledgeBase

if TYPE_CHECKING:
    from ethos.models.inference import RunModel
    from ethos.rundir import RunDir

ABSTAIN = "not in the knowledge base"
"""What an abstention answers in words (its ``answer`` is None)."""


@dataclass(frozen=True)
class Citation:
    """A retrieved passage: its rank, its best chunk's similarity, id and text."""

    rank: int
    passage_id: str
    chunk_id: str
    score: float
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "passage_id": self.passage_id,
            "chunk_id": self.chunk_id,
            "score": round(self.score, 6),
            "text": self.text,
        }


@dataclass(frozen=True)
class GroundedAnswer:
    """One question's answer (None when abstaining), its class probabilities and citations."""

    answer: str | None
    probabilities: dict[str, float] | None
    abstained: bool
    score: float
    threshold: float | None
    read_passage: str | None
    citations: list[Citation]

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer if not self.abstained else None,
            "abstained": self.abstained,
            "message": ABSTAIN if self.abstained else None,
            "probabilities": self.probabilities,
            "retrieval_score": round(self.score, 6),
            "threshold": None if self.threshold is None else round(self.threshold, 6),
            "read_passage": self.read_passage,
            "citations": [c.to_json() for c in self.citations],
        }


@dataclass(frozen=True)
class Retrieved:
    """The top ``k`` passages of each question: ids, best-chunk rows and scores, best first."""

    passage_ids: list[list[str]]
    chunk_rows: np.ndarray
    scores: np.ndarray

    @property
    def best_scores(self) -> np.ndarray:
        return self.scores[:, 0]


def knowledge_base_record(kb: KnowledgeBase, path: str | Path | None = None) -> dict[str, Any]:
    """What a run records about the knowledge base it uses (manifest and ledger), and what
    serving shows of it (without ``path``: a served answer names no file)."""
    counts = kb.info["counts"]
    where = {} if path is None else {"path": str(Path(path).expanduser().resolve())}
    return {
        **where,
        "kb_sha256": kb.sha256,
        "fingerprint": kb.fingerprint,
        "encoder": kb.encoder.short(),
        "passages": int(counts["passages"]),
        "chunks": int(counts["chunks"]),
    }


def check_recorded(kb: KnowledgeBase, record: dict[str, Any], *, run_path: Path) -> None:
    """Refuse ``kb`` unless it is the knowledge base ``record`` (a run's manifest) names."""
    if kb.sha256 != record.get("kb_sha256"):
        raise ModelError(
            f"the knowledge base at {record.get('path')} is not the one {run_path} was trained, "
            f"audited and gated with (kb_sha256 {kb.sha256[:12]} now, "
            f"{str(record.get('kb_sha256'))[:12]} recorded; fingerprint {kb.fingerprint[:12]} "
            f"now, {str(record.get('fingerprint'))[:12]} recorded)",
            hint="restore the knowledge base the run recorded, or train a new run over the new "
            "one (`ethos run CONFIG`) so it is audited and gated again",
        )


def passage_text(kb: KnowledgeBase, passage_id: str) -> str:
    """A passage rebuilt whole from its chunks (their character spans in the scrubbed passage
    overlap by the chunking's shared words; a gap between chunks is one space)."""
    starts, names = kb.passage_groups()
    try:
        index = names.index(passage_id)
    except ValueError:
        raise ModelError(f"the knowledge base has no passage '{passage_id}'") from None
    end_row = starts[index + 1] if index + 1 < len(starts) else len(kb.passages)
    rows = kb.passages.iloc[int(starts[index]) : int(end_row)]
    text, reached = "", None
    for chunk, start, end in zip(rows["text"], rows["start"], rows["end"], strict=True):
        chunk, start, end = str(chunk), int(start), int(end)
        if reached is None:
            text = chunk
        elif start >= reached:
            text += " " + chunk
        else:
            text += chunk[reached - start :]
        reached = end
    return text


def retrieve(kb: KnowledgeBase, query_vectors: np.ndarray, k: int) -> Retrieved:
    """The ``k`` best passages of each query, each with its best chunk (exact search)."""
    from ethos.stats.retrieval import best_per_group, top_k

    chunk_scores = np.atleast_2d(query_vectors.astype(np.float32)) @ kb.vectors.T
    starts, names = kb.passage_groups()
    k = min(k, len(names))
    scores, passages = top_k(best_per_group(chunk_scores, starts), k)
    ends = np.append(starts[1:], chunk_scores.shape[1])
    rows = np.zeros_like(passages)
    for q in range(len(passages)):
        for j, p in enumerate(passages[q]):
            lo, hi = int(starts[p]), int(ends[p])
            rows[q, j] = lo + int(np.argmax(chunk_scores[q, lo:hi]))
    return Retrieved(
        passage_ids=[[names[p] for p in row] for row in passages],
        chunk_rows=rows,
        scores=scores,
    )


class GroundedAnswerer:
    """A grounded run's reader, its knowledge base, the KB's encoder and abstention threshold."""

    def __init__(
        self,
        reader: RunModel,
        kb: KnowledgeBase,
        encoder: SentenceEncoder,
        *,
        threshold: float | None,
        top_k: int,
    ) -> None:
        kb.check_encoder(encoder)
        self.reader = reader
        self.kb = kb
        self.encoder = encoder
        self.threshold = threshold
        self.top_k = top_k

    @classmethod
    def from_run(cls, run: RunDir, *, knowledge_base: str | Path | None = None) -> GroundedAnswerer:
        """The answerer of a finished grounded run, over the knowledge base it recorded (found
        at ``knowledge_base`` when given, else where it was at training) and no other."""
        from ethos.models.inference import RunModel

        record = grounding_record(run)
        kb_record = record["knowledge_base"]
        path = Path(knowledge_base) if knowledge_base is not None else Path(kb_record["path"])
        kb = KnowledgeBase.load(path)
        check_recorded(kb, {**kb_record, "path": str(path)}, run_path=run.path)
        encoder = SentenceEncoder.load(kb.encoder.name)
        threshold = record["abstention"].get("threshold")
        return cls(
            RunModel.from_dir(run),
            kb,
            encoder,
            threshold=None if threshold is None else float(threshold),
            top_k=int(record["top_k"]),
        )

    @property
    def label_names(self) -> list[str]:
        return list(self.reader.label_names)

    def retrieve(self, questions: list[str], k: int | None = None) -> Retrieved:
        """The best ``k`` (default: the run's ``top_k``) passages of each question."""
        vectors = self.encoder.encode(questions).vectors
        return retrieve(self.kb, vectors, self.top_k if k is None else k)

    def read(self, questions: list[str], passage_ids: list[str]) -> np.ndarray:
        """The reader's class probabilities for each question with the named passage."""
        texts = [passage_text(self.kb, p) for p in passage_ids]
        probabilities: np.ndarray = self.reader.predict_proba(questions, texts)
        return probabilities

    def answer(self, questions: list[str]) -> list[GroundedAnswer]:
        """Answer each question from its best passage, or abstain (see the module docstring)."""
        if not questions:
            return []
        found = self.retrieve(questions)
        answered = [
            i
            for i, score in enumerate(found.best_scores)
            if self.threshold is None or score >= self.threshold
        ]
        probabilities = self.read(
            [questions[i] for i in answered], [found.passage_ids[i][0] for i in answered]
        )
        by_question = dict(zip(answered, probabilities, strict=True))
        names = self.label_names
        out = []
        for i in range(len(questions)):
            probs = by_question.get(i)
            citations = [
                Citation(
                    rank=j + 1,
                    passage_id=found.passage_ids[i][j],
                    chunk_id=str(self.kb.passages["id"].iat[int(row)]),
                    score=float(found.scores[i, j]),
                    text=str(self.kb.passages["text"].iat[int(row)]),
                )
                for j, row in enumerate(found.chunk_rows[i])
            ]
            out.append(
                GroundedAnswer(
                    answer=None if probs is None else names[int(np.argmax(probs))],
                    probabilities=None
                    if probs is None
                    else {n: round(float(p), 6) for n, p in zip(names, probs, strict=True)},
                    abstained=probs is None,
                    score=float(found.best_scores[i]),
                    threshold=self.threshold,
                    read_passage=None if probs is None else found.passage_ids[i][0],
                    citations=citations,
                )
            )
        return out


def grounding_record(run: RunDir) -> dict[str, Any]:
    """The manifest's grounding record, or the error saying the run is not grounded."""
    record = run.manifest.get("grounding")
    if not isinstance(record, dict) or "knowledge_base" not in record:
        raise ModelError(
            f"{run.path} is not a grounded run: its manifest records no knowledge base",
            hint="add a grounding: section (knowledge_base: KB_DIR) to the config and train",
        )
    return record
