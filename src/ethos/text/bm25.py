"""Okapi BM25: the lexical baseline beside dense retrieval, written out so its scores are checkable.

Tokens: :func:`tokenize` lower-cases the text and keeps its runs of letters and digits (Unicode
aware: ``[^\\W_]+``), so "COVID-19's" is ``covid``, ``19``, ``s``. No stemming, no stop words:
both would be choices a reader must know to reproduce a figure, and IDF already discounts
frequent words.

Score of document D for query Q (each query token counted as often as it occurs in Q, as
``rank-bm25`` does)::

    score(D, Q) = sum over tokens t of Q:  IDF(t) * f(t, D) * (k1 + 1)
                                           / (f(t, D) + k1 * (1 - b + b * |D| / avgdl))

    IDF(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))

with f(t, D) the count of t in D, |D| the tokens of D, avgdl the mean |D| over the corpus, N the
documents and n(t) those containing t. This IDF is Lucene's (Robertson-Spärck Jones with +1
inside the logarithm), positive for every term, so a word in more than half the documents still
counts a little instead of subtracting (the classic IDF without the +1 goes negative there).
Defaults k1 = 1.5, b = 0.75 (``rank-bm25``'s; Lucene uses k1 = 1.2). A query token absent from
the corpus contributes nothing.

Scoring is one sparse matrix product: the per-(document, term) weights are computed once when
the index is built.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

_TOKEN = re.compile(r"[^\W_]+")

K1 = 1.5
B = 0.75


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters and digits."""
    return _TOKEN.findall(text.lower())


class BM25:
    """A BM25 index over ``documents`` (texts), scored against queries (texts)."""

    def __init__(self, documents: Sequence[str], *, k1: float = K1, b: float = B) -> None:
        if len(documents) == 0:
            raise ValueError("BM25 needs at least one document")
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b = k1, b
        self.vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        counts: list[int] = []
        lengths = np.zeros(len(documents), dtype=np.float64)
        for row, text in enumerate(documents):
            tokens = tokenize(text)
            lengths[row] = len(tokens)
            for term, count in Counter(tokens).items():
                rows.append(row)
                cols.append(self.vocabulary.setdefault(term, len(self.vocabulary)))
                counts.append(count)
        n_docs = len(documents)
        tf = sparse.csr_matrix(
            (np.asarray(counts, dtype=np.float64), (rows, cols)),
            shape=(n_docs, max(len(self.vocabulary), 1)),
        )
        self.document_frequency = np.bincount(cols, minlength=tf.shape[1]).astype(np.float64)
        self.idf = np.log1p(
            (n_docs - self.document_frequency + 0.5) / (self.document_frequency + 0.5)
        )
        self.average_length = float(lengths.mean())
        self.lengths = lengths
        relative = lengths / self.average_length if self.average_length else np.ones_like(lengths)
        norm = k1 * (1 - b + b * relative)
        weights = tf.tocoo()
        data = self.idf[weights.col] * weights.data * (k1 + 1) / (weights.data + norm[weights.row])
        # documents x terms, transposed once for query products
        self._weights = sparse.csr_matrix(
            (data, (weights.row, weights.col)), shape=tf.shape
        ).T.tocsr()

    def __len__(self) -> int:
        return len(self.lengths)

    def query_matrix(self, queries: Sequence[str]) -> sparse.csr_matrix:
        """Queries x terms: how often each known term occurs in each query."""
        rows: list[int] = []
        cols: list[int] = []
        counts: list[int] = []
        for row, text in enumerate(queries):
            for term, count in Counter(tokenize(text)).items():
                column = self.vocabulary.get(term)
                if column is not None:
                    rows.append(row)
                    cols.append(column)
                    counts.append(count)
        return sparse.csr_matrix(
            (np.asarray(counts, dtype=np.float64), (rows, cols)),
            shape=(len(queries), self._weights.shape[0]),
        )

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """BM25 scores, queries x documents (float64)."""
        return np.asarray((self.query_matrix(queries) @ self._weights).todense())

    def score(self, query: str) -> np.ndarray:
        """BM25 scores of one query against every document."""
        return self.scores([query])[0]
