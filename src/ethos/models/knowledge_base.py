"""A knowledge base: passages (chunks) with their embeddings, saved as a folder, searched exactly.

The folder (written atomically: it appears whole or not at all)::

    KB_DIR/
      kb.json            format, created time, passages fingerprint, vectors sha256, kb_sha256,
                         encoder identity, chunking, source, PII scrub record, counts, index
      vectors.npy        float32, chunks x dimension, unit rows, in passages.parquet's order
      passages.parquet   id, passage_id, chunk, text, source, start, end (one row per chunk)

``fingerprint`` is the passages' (:func:`ethos.data.passages.passages_fingerprint`: sha256 over
the chunks' ids and texts, like a data set's); ``kb_sha256`` binds that fingerprint, the encoder's
vector space (weights sha256, pooling, normalisation, length limit) and the vectors' sha256, so
it is what a run that uses the knowledge base records in the ledger. Loading recomputes both the
fingerprint and the vectors' sha256 and refuses a knowledge base whose files no longer match
``kb.json``, naming the file.

**Search is exact**: one matrix product of unit vectors (cosine similarity), then the top k
(:func:`ethos.stats.retrieval.top_k`). Measured on the bundled PubMedQA knowledge base (2,937
chunks of 384 dimensions, one thread, ``benchmarks/results/retrieval_pubmedqa.json``): the 1,000
questions' scores take 23 ms, their top 10 chunks 46 ms, and the full passage ranking of every
question 0.15 s, against 115 s to embed the chunks. The product costs 2 x chunks x 384 flops a
query, so a million chunks would still be about 8 ms a query at the 100 GFLOP/s this machine
measures (and 1.5 GB of vectors). An approximate index (FAISS, hnswlib; neither is installed
here) would add a dependency and give up exactness for speed that is not needed at this size.
A later backend can keep this file layout and :meth:`KnowledgeBase.search`'s contract.

A query encoder must have the knowledge base's vector space: :meth:`KnowledgeBase.search_texts`
refuses another encoder (different weights, pooling or limit) with a :class:`ModelError`, since
its vectors would be compared with vectors from a different space and rank at random.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ethos.data.passages import COLUMNS, Chunking, Passages, passages_fingerprint
from ethos.errors import ConfigError, DataError, ModelError
from ethos.models.embedding import EncoderIdentity, SentenceEncoder

KB_JSON = "kb.json"
VECTORS = "vectors.npy"
PASSAGES = "passages.parquet"
FORMAT = "ethos-knowledge-base"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk, its passage and its cosine similarity to the query."""

    rank: int
    score: float
    id: str
    passage_id: str
    source: str
    text: str


def vectors_sha256(vectors: np.ndarray) -> str:
    """sha256 of the vectors as little-endian float32, row-major, with their shape."""
    array = np.ascontiguousarray(vectors, dtype="<f4")
    digest = hashlib.sha256(json.dumps(list(array.shape)).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def kb_sha256(fingerprint: str, encoder: EncoderIdentity, vectors_digest: str) -> str:
    """The knowledge base's identity: passages fingerprint, encoder vector space, vectors."""
    document = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "encoder": encoder.vector_space(),
        "vectors_sha256": vectors_digest,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@dataclass
class KnowledgeBase:
    """Chunks, their unit vectors and the record (:attr:`info`, kb.json) that describes them."""

    passages: pd.DataFrame
    vectors: np.ndarray
    info: dict[str, Any]
    _groups: tuple[np.ndarray, list[str]] | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        return str(self.info["fingerprint"])

    @property
    def sha256(self) -> str:
        return str(self.info["kb_sha256"])

    @property
    def encoder(self) -> EncoderIdentity:
        return EncoderIdentity.from_dict(self.info["encoder"])

    def __len__(self) -> int:
        return len(self.passages)

    def __repr__(self) -> str:
        counts = self.info["counts"]
        return (
            f"KnowledgeBase: {counts['passages']} passages, {counts['chunks']} chunks, "
            f"{counts['dimension']} dimensions; encoder {self.encoder.short()}; "
            f"fingerprint {self.fingerprint[:12]}, kb_sha256 {self.sha256[:12]}"
        )

    # -- search -------------------------------------------------------------------------------

    def search(self, query_vectors: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar chunks of each query: (scores, chunk row indices), best first."""
        from ethos.stats.retrieval import top_k

        return top_k(self._scores(query_vectors, k), k)

    def search_passages(
        self, query_vectors: np.ndarray, k: int = 5
    ) -> tuple[np.ndarray, list[list[str]]]:
        """The ``k`` most similar *passages* of each query (a passage scores as its best chunk):
        (scores, passage ids), best first."""
        from ethos.stats.retrieval import best_per_group, top_k

        starts, names = self.passage_groups()
        scores, indices = top_k(best_per_group(self._scores(query_vectors, k), starts), k)
        return scores, [[names[i] for i in row] for row in indices]

    def passage_groups(self) -> tuple[np.ndarray, list[str]]:
        """Where each passage's chunks start in the rows, and the passages' ids."""
        from ethos.stats.retrieval import group_starts

        if self._groups is None:
            self._groups = group_starts([str(p) for p in self.passages["passage_id"]])
        return self._groups

    def check_encoder(self, encoder: SentenceEncoder | EncoderIdentity) -> None:
        """Refuse a query encoder whose vector space is not the knowledge base's."""
        identity = encoder.identity if isinstance(encoder, SentenceEncoder) else encoder
        if identity.vector_space() != self.encoder.vector_space():
            mine, theirs = self.encoder.vector_space(), identity.vector_space()
            differ = [
                f"{k} {mine[k]!s:.12} vs {theirs[k]!s:.12}" for k in mine if mine[k] != theirs[k]
            ]
            raise ModelError(
                f"the knowledge base was built with encoder {self.encoder.short()}, but the "
                f"query encoder is {identity.short()} ({'; '.join(differ)}): their vectors are "
                "not comparable",
                hint=f"query with the encoder that built it (--model {self.encoder.name}), or "
                "rebuild the knowledge base with this encoder",
            )

    def search_texts(
        self,
        queries: list[str],
        encoder: SentenceEncoder,
        k: int = 5,
        *,
        batch_size: int = 32,
    ) -> list[list[Hit]]:
        """Encode ``queries`` with ``encoder`` (refused unless it is the KB's) and search chunks."""
        self.check_encoder(encoder)
        vectors = encoder.encode(queries, batch_size=batch_size).vectors
        scores, indices = self.search(vectors, k)
        rows = self.passages
        return [
            [
                Hit(
                    rank=rank,
                    score=float(score),
                    id=str(rows["id"].iat[i]),
                    passage_id=str(rows["passage_id"].iat[i]),
                    source=str(rows["source"].iat[i]),
                    text=str(rows["text"].iat[i]),
                )
                for rank, (score, i) in enumerate(zip(row_scores, row_indices, strict=True), 1)
            ]
            for row_scores, row_indices in zip(scores, indices, strict=True)
        ]

    def _scores(self, query_vectors: np.ndarray, k: int) -> np.ndarray:
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}", hint="ask for -k 1 or more")
        queries = np.atleast_2d(np.asarray(query_vectors, dtype=np.float32))
        if queries.shape[1] != self.vectors.shape[1]:
            raise ModelError(
                f"query vectors have {queries.shape[1]} dimensions, the knowledge base "
                f"{self.vectors.shape[1]}",
                hint="encode queries with the knowledge base's encoder",
            )
        scores: np.ndarray = queries @ self.vectors.T
        return scores

    # -- files ---------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the knowledge base to a new folder, atomically (refused if it exists)."""
        from ethos.rundir import atomic_directory, write_json

        folder = Path(folder)
        with atomic_directory(folder) as staging:
            np.save(staging / VECTORS, np.ascontiguousarray(self.vectors, dtype=np.float32))
            self.passages.to_parquet(staging / PASSAGES, index=False)
            write_json(staging / KB_JSON, self.info)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> KnowledgeBase:
        """Read a saved knowledge base, checking its files against kb.json."""
        folder = Path(folder)
        if not (folder / KB_JSON).is_file():
            raise DataError(
                f"{folder} is not a knowledge base (no {KB_JSON})",
                hint="pass the folder `ethos kb build` wrote",
            )
        info = _read_info(folder / KB_JSON)
        vectors = _read_vectors(folder / VECTORS)
        passages = _read_passages(folder / PASSAGES)
        if vectors_sha256(vectors) != info["vectors_sha256"] or len(vectors) != len(passages):
            raise DataError(
                f"{folder / VECTORS} does not match {KB_JSON} (its sha256 or row count differs): "
                "the file was changed or damaged",
                hint="rebuild the knowledge base with `ethos kb build`",
            )
        fingerprint = passages_fingerprint(
            [str(v) for v in passages["id"]], [str(v) for v in passages["text"]]
        )
        if fingerprint != info["fingerprint"]:
            raise DataError(
                f"{folder / PASSAGES} does not match {KB_JSON} (its passages fingerprint "
                f"{fingerprint[:12]} is not the recorded {str(info['fingerprint'])[:12]}): the "
                "file was changed or damaged",
                hint="rebuild the knowledge base with `ethos kb build`",
            )
        expected = kb_sha256(
            fingerprint, EncoderIdentity.from_dict(info["encoder"]), info["vectors_sha256"]
        )
        if expected != info["kb_sha256"]:
            raise DataError(
                f"{folder / KB_JSON} is damaged: its kb_sha256 is not the hash of its "
                "fingerprint, encoder and vectors (was the encoder record edited?)",
                hint="rebuild the knowledge base with `ethos kb build`",
            )
        kb = cls(passages=passages, vectors=vectors, info=info)
        try:
            kb.passage_groups()
        except ValueError:
            raise DataError(
                f"{folder / PASSAGES}: the chunks of a passage are not adjacent",
                hint="rebuild the knowledge base with `ethos kb build`",
            ) from None
        return kb


def build_kb(
    passages: Passages,
    encoder: SentenceEncoder,
    *,
    batch_size: int = 32,
    progress: bool = False,
) -> KnowledgeBase:
    """Embed every chunk of ``passages`` with ``encoder``; the result is unsaved."""
    started = time.perf_counter()
    embedded = encoder.encode(list(passages.texts), batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - started
    digest = vectors_sha256(embedded.vectors)
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": passages.fingerprint,
        "vectors_sha256": digest,
        "kb_sha256": kb_sha256(passages.fingerprint, encoder.identity, digest),
        "encoder": encoder.identity.to_dict(),
        "source": passages.source,
        "chunking": passages.chunking.describe(),
        "pii": passages.pii,
        "counts": {
            "passages": passages.passage_count,
            "chunks": len(passages),
            "dimension": encoder.identity.dimension,
            "truncated_chunks": embedded.truncated,
        },
        "index": {"kind": "exact", "similarity": "cosine (inner product of unit vectors)"},
        "encoding_seconds": round(seconds, 3),
    }
    return KnowledgeBase(passages=passages.frame(), vectors=embedded.vectors, info=info)


def chunking_of(kb: KnowledgeBase) -> Chunking:
    """The chunking a knowledge base was built with (to chunk new passages the same way)."""
    recorded = kb.info["chunking"]
    if recorded["mode"] == "off":
        return Chunking(enabled=False, words=int(recorded["max_words"]))
    return Chunking(words=int(recorded["words"]), overlap=int(recorded["overlap"]))


_REQUIRED = ("format", "fingerprint", "vectors_sha256", "kb_sha256", "encoder", "counts")


def _read_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{path} is damaged: {exc}", hint="rebuild the knowledge base with `ethos kb build`"
        ) from None
    missing = [key for key in _REQUIRED if not isinstance(info, dict) or key not in info]
    if missing or info.get("format") != FORMAT:
        raise DataError(
            f"{path} is not an ethos knowledge base record"
            + (f" (missing {', '.join(missing)})" if missing else ""),
            hint="rebuild the knowledge base with `ethos kb build`",
        )
    if info.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise DataError(
            f"{path} was written by a newer ethos (format {info['format_version']})",
            hint="upgrade ethos",
        )
    try:
        EncoderIdentity.from_dict(info["encoder"])
    except (KeyError, TypeError):
        raise DataError(
            f"{path} is damaged: its encoder record is incomplete",
            hint="rebuild the knowledge base with `ethos kb build`",
        ) from None
    return dict(info)


def _read_vectors(path: Path) -> np.ndarray:
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"{path} is missing or damaged: {exc}",
            hint="rebuild the knowledge base with `ethos kb build`",
        ) from None
    if vectors.ndim != 2 or vectors.dtype != np.float32:
        raise DataError(
            f"{path} is damaged: expected a float32 matrix, found {vectors.dtype} {vectors.shape}",
            hint="rebuild the knowledge base with `ethos kb build`",
        )
    return np.ascontiguousarray(vectors)


def _read_passages(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(
            f"{path} is missing or damaged: {exc}",
            hint="rebuild the knowledge base with `ethos kb build`",
        ) from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(
            f"{path} is damaged: no column {', '.join(missing)}",
            hint="rebuild the knowledge base with `ethos kb build`",
        )
    return table
