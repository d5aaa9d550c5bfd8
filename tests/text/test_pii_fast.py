"""The lean PII path finds exactly what Presidio's plain path finds, and skips what it says.

``pii.find_pii`` (only the asked-for recognizers, NER alone, tagger and lemmatizer only where a
context word could matter, short phone candidates not parsed) is held to
``pii.reference_find_pii`` (the whole spaCy pipeline and ``AnalyzerEngine.analyze`` on every
window) span for span, type for type and score for score, on a fixed corpus of ~460 texts: the
texts the serving and audit tests mask, COMPAS records with and without identifying fields,
and seeded free texts with names, e-mails, phones, addresses, card and ID numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from ethos.text import pii
from pii_texts import HOSTILE, compas_texts, corpus, free_texts, guardrail_texts

NO_NER = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "US_PASSPORT", "US_BANK_NUMBER")
NER_ONLY = ("PERSON", "LOCATION", "NRP", "DATE_TIME", "ORGANIZATION")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return corpus()


@pytest.fixture(scope="module")
def reference(texts: list[str]) -> list[list[pii.PiiSpan]]:
    return pii.reference_find_pii(texts)


def test_fast_path_equals_presidio_on_the_corpus(
    texts: list[str], reference: list[list[pii.PiiSpan]]
) -> None:
    fast = pii.find_pii(texts, batch_size=16)
    differing = [(t, r, f) for t, r, f in zip(texts, reference, fast, strict=True) if r != f]
    assert not differing, differing[:3]
    # The corpus exercises both branches and every default type that has examples in it.
    counts = pii.count_entities(reference)
    assert counts["PERSON"] > 100 and counts["PHONE_NUMBER"] > 50 and counts["LOCATION"] > 20
    for kind in ("EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "IP_ADDRESS", "URL", "IBAN_CODE"):
        assert counts.get(kind, 0) >= 5, kind
    assert sum(not spans for spans in reference) > 150  # clean texts: the NER-only branch
    assert [pii.mask_text(t, s) for t, s in zip(texts, fast, strict=True)] == pii.mask_texts(texts)


@pytest.mark.parametrize("entities", [NO_NER, NER_ONLY, "all"], ids=["no-ner", "ner-only", "all"])
def test_fast_path_equals_presidio_for_other_entity_lists(
    entities: Sequence[str] | str, texts: list[str]
) -> None:
    chosen = sorted(pii.analyzer_engine().get_supported_entities("en"))
    chosen = chosen if entities == "all" else list(entities)
    sample = texts[::3]
    expected = pii.reference_find_pii(sample, entities=chosen)
    assert pii.find_pii(sample, entities=chosen) == expected
    assert sum(map(len, expected)) > 50


def test_batch_size_does_not_change_what_is_found(
    texts: list[str], reference: list[list[pii.PiiSpan]]
) -> None:
    assert texts[:37] == guardrail_texts() + HOSTILE
    assert pii.find_pii(texts[:37], batch_size=1) == reference[:37]
    assert pii.find_pii(texts[-40:], batch_size=1) == reference[-40:]


class PipeSpy:
    """Records which spaCy components ``find_pii`` runs on how many texts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[tuple[str, ...], int]] = []
        real = pii._run_pipes

        def spy(nlp: Any, docs: list[Any], names: Sequence[str], batch_size: int) -> list[Any]:
            self.calls.append((tuple(names), len(docs)))
            return real(nlp, docs, names, batch_size)

        monkeypatch.setattr(pii, "_run_pipes", spy)


def test_spacy_runs_only_what_the_hits_need(monkeypatch: pytest.MonkeyPatch) -> None:
    records = compas_texts(20, identifying=0)
    spy = PipeSpy(monkeypatch)
    found = pii.find_pii(records)
    assert {s.entity_type for spans in found for s in spans} <= {"PERSON", "LOCATION"}
    distinct = len(set(records))  # identical windows are analysed once
    assert spy.calls == [(("ner",), distinct)]  # no hit a context word could raise: no tagger

    spy.calls.clear()
    clean = [r for r, spans in zip(records, found, strict=True) if not spans][:5]
    with_phone = [*clean, "call me on (212) 555-0147", "ssn 536228471"]
    found = pii.find_pii(with_phone)
    assert [bool(s) for s in found] == [False] * len(clean) + [True, True]
    assert spy.calls == [(("ner",), len(set(with_phone))), (pii._LEMMA_PIPES, 2)]  # two only

    spy.calls.clear()
    (spans,) = pii.find_pii(["Maria Garcia: maria@example.com"], entities=NO_NER)
    assert [s.entity_type for s in spans] == ["EMAIL_ADDRESS"]
    assert spy.calls == [(pii._LEMMA_PIPES, 1)]  # no NER type asked for: no NER at all


def test_the_plan_keeps_only_the_recognizers_asked_for() -> None:
    engine = pii.analyzer_engine()
    plan = pii._plan_for(engine, NO_NER)
    assert plan is pii._plan_for(engine, list(NO_NER))  # built once per list
    assert not plan.ner and plan.lazy_lemmas
    names = {r.name for r in plan.recognizers}
    assert names == {
        "OfflineEmailRecognizer",
        "PhoneRecognizer",
        "UsSsnRecognizer",
        "UsPassportRecognizer",
        "UsBankRecognizer",
    }  # not SpacyRecognizer: en_core_web_sm's NER yields none of these types
    default = pii._plan_for(engine, pii.DEFAULT_ENTITIES)
    assert default.ner and "SpacyRecognizer" in {r.name for r in default.recognizers}
    assert len(default.recognizers) < len(engine.registry.recognizers)


PHONES = [
    "(212) 555-0147",
    "+44 20 7946 0958",
    "+49 30 901820",
    "+33 1 42 68 53 00",
    "+378 0549 123456",  # San Marino: the national prefix transform writes digits in
    "+44 1481 712345",  # Guernsey
    "+1 268 460 1234",  # Antigua, NANP with a transform rule
    "1-800-FLOWERS",
    "+91 98765 43210",
    "call 555-123-4567 ext. 12",
    "tel: 030 1234567",
    "12 3 45",
    "no 7, 42 or 123; 2013-08-14; 1/2/1990 at 10:30",
    "numbers 112 911 999 110",
    "+1 2",
]


def test_short_phone_candidates_are_skipped_without_changing_results() -> None:
    assert pii._phone_min_alnum() >= 3  # runs of one or two digits are never parsed
    engine = pii.analyzer_engine()
    stock = next(r for r in engine.registry.recognizers if r.name == "PhoneRecognizer")
    fast = pii._fast_phone_recognizer(stock)
    assert fast is not None and type(fast) is not type(stock)
    for text in [*PHONES, " ".join(PHONES), *free_texts(60)]:
        expected = sorted((r.start, r.end, r.score) for r in stock.analyze(text, ["PHONE_NUMBER"]))
        got = sorted((r.start, r.end, r.score) for r in fast.analyze(text, ["PHONE_NUMBER"]))
        assert got == expected, text
    assert any(stock.analyze(p, ["PHONE_NUMBER"]) for p in PHONES[:7])


def test_threads_share_one_engine_and_get_the_serial_answer(
    texts: list[str], reference: list[list[pii.PiiSpan]]
) -> None:
    part = texts[::5]
    expected = reference[::5]
    results: dict[int, list[list[pii.PiiSpan]]] = {}

    def work(i: int) -> None:
        results[i] = pii.find_pii(part, batch_size=8 + i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == {i: expected for i in range(3)}
