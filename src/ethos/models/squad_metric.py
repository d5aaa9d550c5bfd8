"""Exact match and F1 for extractive question answering, as SQuAD defines them.

Source: the evaluation of SQuAD v1.1 (Rajpurkar et al. 2016, "SQuAD: 100,000+ Questions for
Machine Comprehension of Text", section 6), implemented here from its definition:

* normalise an answer: lower-case, delete ASCII punctuation, delete the articles *a*, *an*,
  *the* as whole words, collapse runs of whitespace;
* exact match = 1 if the normalised prediction equals the normalised gold answer, else 0;
* F1 over bags of normalised tokens: with ``c`` tokens in common (counted with multiplicity),
  precision ``P = c / |pred|``, recall ``R = c / |gold|``, ``F1 = 2PR / (P + R)`` (0 when c = 0);
* per question take the maximum over its gold answers, then average over questions, times 100.

Unanswerable questions follow SQuAD 2.0 (Rajpurkar et al. 2018): their gold answer is the empty
string, and when either side normalises to no tokens, F1 is 1 if both are empty and 0 otherwise.
Written by hand because the definition is a few lines and the maintained implementations pull in
a whole evaluation framework.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower-case, strip punctuation, drop the articles a/an/the, collapse whitespace."""
    lowered = text.lower()
    no_punctuation = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punctuation)
    return " ".join(no_articles.split())


def exact_match_score(prediction: str, gold: str) -> float:
    """1.0 if the two answers are equal after :func:`normalize_answer`, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token-bag F1 between one prediction and one gold answer, in [0, 1].

    ``P = common / len(pred_tokens)``, ``R = common / len(gold_tokens)``, ``F1 = 2PR / (P + R)``;
    if either normalises to no tokens, 1.0 when both do and 0.0 otherwise (SQuAD 2.0).
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Corpus exact match and F1 (both 0-100) over the questions in ``references``.

    ``references`` maps each question id to its gold answer texts; an empty list marks an
    unanswerable question (gold ``""``). A question with no prediction is scored against the
    empty answer (so it counts as wrong unless unanswerable) and counted under ``missing``;
    predictions for ids not in ``references`` are ignored. Returns ``exact_match``, ``f1``,
    ``count`` (questions scored) and ``missing``.
    """
    if not references:
        raise ValueError("squad_scores needs at least one reference question")
    total_em = 0.0
    total_f1 = 0.0
    missing = 0
    for qid, golds in references.items():
        if isinstance(golds, str):
            raise TypeError(f"references[{qid!r}] is a string; give a list of gold answers")
        if qid not in predictions:
            missing += 1
        prediction = predictions.get(qid, "")
        candidates = list(golds) or [""]
        total_em += max(exact_match_score(prediction, g) for g in candidates)
        total_f1 += max(f1_score(prediction, g) for g in candidates)
    count = len(references)
    return {
        "exact_match": 100.0 * total_em / count,
        "f1": 100.0 * total_f1 / count,
        "count": float(count),
        "missing": float(missing),
    }
