"""Robustness: how often small edits that should not matter, and counterfactual identity swaps that
must not matter, change the model's decision.

Families (:mod:`ethos.text.perturb` has the edits):

* noise -- ``char_keyboard`` (keyboard typos), ``char_swap`` (adjacent letters swapped), ``casing``,
  ``whitespace``, ``word_dropout``: CheckList's invariance tests (Ribeiro et al. 2020, "Beyond
  Accuracy: Behavioral Testing of NLP Models with CheckList").
* counterfactual -- ``gender_swap`` (every gendered word swapped at once), ``holisticbias`` (per
  axis, a descriptor replaced by others of its axis; Smith et al. 2022) and ``records`` (for
  records-to-text data, a sensitive field that is part of the text set to each other observed value
  and re-rendered exactly as in training): counterfactual token fairness (Garg et al. 2019,
  "Counterfactual Fairness in Text Classification through Robustness").

Numbers, per family, over pairs (original x, perturbed x'): the decision is the arg-max class of
``predict_proba``; a *flip* is a pair whose decisions differ; ``flip_rate`` = flips / pairs.
``p`` is P(positive) for a binary task and, for a multiclass one, the probability of the class
predicted for x; ``mean_abs_delta`` = mean |p(x') - p(x)| and, for counterfactuals, ``mean_delta``
its signed mean.
Gender swaps and descriptors are measured only on texts that contain a swappable term;
``coverage`` says what share of all texts did.

Cost. The check makes one ``predict_proba`` call: the originals and every perturbed text, each
distinct text once. Families are filled round-robin, one text at a time, along one stratified
(by group) random order, so every family gets the same texts where it applies, until each has
``sample_size`` texts or the call would exceed ``budget`` times the number of audited texts (one
inference pass over the test set at the default 1.0).

Known limits of word-list counterfactuals, left as they are: a descriptor that is also a common word
is swapped anywhere ("white car"), "her" has one counterpart in the lexicon (him), and a swap can
break agreement ("an asian" -> "an white").
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ethos.audit.errors import AuditError, AuditWarning
from ethos.stats.bootstrap import rng_for
from ethos.text.lexicons import gender_swaps, holisticbias_descriptors
from ethos.text.perturb import NOISE, find_terms, replace_term, swap_gender, term_pattern

if TYPE_CHECKING:
    from ethos.audit.protocol import AuditContext

NOISE_FAMILIES = tuple(NOISE)
COUNTERFACTUAL_FAMILIES = ("gender_swap", "holisticbias", "records")
FAMILIES = NOISE_FAMILIES + COUNTERFACTUAL_FAMILIES
DEFAULT_SAMPLE_SIZE = 150
"""Texts per family (per axis, per record column) at most."""
MIN_PAIRS = 30
"""Below this many pairs a family's flip rate moves in steps of 3+ points; the section says so."""
EXCERPT_CHARS = 200
MAX_GROUPS = 20
"""``per_group`` keeps the most frequent terms or values, at most this many."""


@dataclass(frozen=True)
class _Variant:
    text: str
    change: str | None = None  # what was swapped, for a reader: "race: Caucasian -> Asian"
    source: str | None = None  # the replaced term or value: the per_group key
    target: str | None = None


@dataclass(frozen=True)
class _Unit:
    row: int
    original: str
    variants: tuple[_Variant, ...]


@dataclass
class _Family:
    path: tuple[str, ...]  # ("noise", "casing"), ("counterfactual", "records", "race")
    units: Iterator[_Unit]
    detail: dict[str, Any] = field(default_factory=dict)
    chosen: list[_Unit] = field(default_factory=list)
    keys: list[list[_Key]] = field(default_factory=list)  # per chosen unit: original, variants
    done: bool = False

    @property
    def counterfactual(self) -> bool:
        return self.path[0] == "counterfactual"


@dataclass(frozen=True)
class _Inputs:
    texts: list[str]
    pairs: list[str] | None
    order: np.ndarray  # stratified random row order; every prefix is a stratified sample
    stratified_by: list[str]


class RobustnessCheck:
    """The robustness audit check: perturb a stratified sample of texts and count changed decisions.

    Options: ``families`` (default all of :data:`FAMILIES`), ``sample_size`` (texts per family,
    axis or record column), ``budget`` (model rows at most, as a multiple of the number of audited
    texts), ``noise_rate`` (share of words a noise edit touches), ``n_replacements`` (other
    descriptors tried per HolisticBias text), ``axes`` (HolisticBias axes, default all) and
    ``n_worst`` (examples kept per family).
    """

    name: str = "robustness"
    requires: tuple[str, ...] = ("texts", "predict_proba")

    def __init__(
        self,
        *,
        families: Sequence[str] | None = None,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        budget: float = 1.0,
        noise_rate: float = 0.1,
        n_replacements: int = 3,
        axes: Sequence[str] | None = None,
        n_worst: int = 5,
    ) -> None:
        self.families = families
        self.sample_size = sample_size
        self.budget = budget
        self.noise_rate = noise_rate
        self.n_replacements = n_replacements
        self.axes = axes
        self.n_worst = n_worst

    def run(self, context: AuditContext) -> dict[str, Any]:
        from ethos.audit.protocol import to_jsonable

        context.require(self)
        families = self._validate_options()
        inputs = _inputs(context)
        notes: list[str] = []
        built = self._build(families, inputs, context, notes)
        max_rows = int(self.budget * len(inputs.texts))
        model = _ModelInputs(context.extras, inputs.pairs)
        _allocate(built, model, sample_size=self.sample_size, max_rows=max_rows)
        prob = model.predict(context)
        names = list(context.extras.get("label_names") or context.labels or [])
        sections = {f.path: _family_section(f, model, prob, self.n_worst) for f in built}
        limited = [".".join(f.path) for f in built if _stopped_by_budget(f, self.sample_size)]
        for path, family in sections.items():
            if family["n_unseen"]:
                notes.append(
                    f"{family['n_unseen']} of {family['n']} {'.'.join(path)} pairs change nothing "
                    "the model sees (the tokenizer normalises the edit away, or it lies beyond "
                    f"max_length={context.extras.get('max_length')} tokens), so they cannot flip"
                )
        small = [".".join(p) for p, s in sections.items() if 0 < s["n"] < MIN_PAIRS]
        if small:
            message = (
                f"flip rates from fewer than {MIN_PAIRS} pairs are coarse: {', '.join(small)} "
                "(raise the robustness budget or sample_size)"
            )
            warnings.warn(message, AuditWarning, stacklevel=2)
            notes.append(message)
        section: dict[str, Any] = {
            **_maxima(sections),
            "flip_definition": "a pair (original, perturbed) whose arg-max classes differ",
            "probability": _probability_name(prob.shape[1], names),
            "n_texts": len(inputs.texts),
            "seed": context.seed,
            "sample": {
                "sample_size": self.sample_size,
                "budget": self.budget,
                "max_rows": max_rows,
                "model_rows": len(model.queued),
                "model_calls": 1 if model.queued else 0,
                "dedupe": "token ids after truncation" if model.tokenized else "text",
                "stratified_by": inputs.stratified_by,
                "budget_limited": limited,
            },
        }
        for path, family in sections.items():
            node = section
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = family
        section["notes"] = notes
        return dict(to_jsonable(section))

    def _validate_options(self) -> list[str]:
        chosen = list(FAMILIES if self.families is None else self.families)
        unknown = [f for f in chosen if f not in FAMILIES]
        if unknown:
            raise AuditError(f"unknown robustness families {unknown}; known: {list(FAMILIES)}")
        if self.sample_size < 1:
            raise AuditError(f"sample_size must be at least 1, got {self.sample_size}")
        if not self.budget > 0:
            raise AuditError(f"budget must be positive, got {self.budget}")
        if not 0 < self.noise_rate <= 1:
            raise AuditError(f"noise_rate must be in (0, 1], got {self.noise_rate}")
        if self.n_replacements < 1 or self.n_worst < 0:
            raise AuditError("n_replacements must be at least 1 and n_worst at least 0")
        known_axes = holisticbias_descriptors()
        bad = [a for a in (self.axes or ()) if a not in known_axes]
        if bad:
            raise AuditError(f"unknown HolisticBias axes {bad}; known: {sorted(known_axes)}")
        return chosen

    def _build(
        self, chosen: list[str], inputs: _Inputs, context: AuditContext, notes: list[str]
    ) -> list[_Family]:
        out = []
        for name in chosen:
            if name in NOISE:
                units = _noise_units(inputs, name, NOISE[name], context.seed, self.noise_rate)
                out.append(_Family(("noise", name), units))
        if "gender_swap" in chosen:
            out.append(_gender_family(inputs))
        if "holisticbias" in chosen:
            out.extend(_descriptor_families(inputs, self.axes, self.n_replacements, context.seed))
        if "records" in chosen:
            out.extend(_record_families(inputs, context.extras, self.sample_size, notes))
        return out


# --------------------------------------------------------------------------------------------
# Inputs and the stratified order.


def _inputs(context: AuditContext) -> _Inputs:
    texts = list(context.texts or [])
    if not texts:
        raise AuditError("empty input: there are no texts to perturb")
    if not all(isinstance(t, str) for t in texts):
        raise AuditError("texts must all be strings", hint="pass the model's input texts")
    n = len(texts)
    raw_pairs = context.extras.get("text_pairs")
    pairs = None if raw_pairs is None else [str(p) for p in raw_pairs]
    if pairs is not None and len(pairs) != n:
        raise AuditError(f"length mismatch: texts has {n} rows but text_pairs has {len(pairs)}")
    strata, names = None, []
    groups = context.groups
    if groups is not None and groups.shape[1] > 0:
        if len(groups) != n:
            raise AuditError(f"length mismatch: texts has {n} rows but groups has {len(groups)}")
        names = [str(c) for c in groups.columns]
        cells = groups.astype(object).where(groups.notna(), "<NA>").astype(str).to_numpy()
        strata = np.array(["*".join(row) for row in cells], dtype=object)
    records = context.extras.get("records")
    if records is not None and len(records) and len(records) != n:
        raise AuditError(f"length mismatch: texts has {n} rows but records has {len(records)}")
    order = _stratified_order(strata, n, rng_for(context.seed, "robustness:order"))
    return _Inputs(texts, pairs, order, names)


def _stratified_order(strata: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random row order whose every prefix holds each stratum in proportion to its size.

    Row j of a shuffled stratum of size m sits at (j + u) / m for one uniform offset u per stratum
    (systematic sampling); sorting by that position interleaves the strata.
    """
    if strata is None:
        return rng.permutation(n)
    position = np.empty(n)
    for value in sorted(set(strata.tolist())):
        rows = rng.permutation(np.flatnonzero(strata == value))
        position[rows] = (np.arange(len(rows)) + rng.random()) / len(rows)
    return np.lexsort((rng.random(n), position))


# --------------------------------------------------------------------------------------------
# Families: each a lazy stream of (row, original, perturbed variants) along the order.


def _noise_units(
    inputs: _Inputs, name: str, perturb: Callable[..., str], seed: int, rate: float
) -> Iterator[_Unit]:
    for row in inputs.order.tolist():
        text = inputs.texts[row]
        # one generator per (family, row): a text's edit does not depend on the sample size
        out = perturb(text, rng_for(seed, f"{name}:{row}"), rate=rate)
        if out != text:
            yield _Unit(row, text, (_Variant(out),))


def _gender_family(inputs: _Inputs) -> _Family:
    table = gender_swaps()
    pattern = term_pattern(frozenset(table))
    present = [pattern.search(t) is not None for t in inputs.texts]  # swap lazily, scan all
    eligible = [r for r in inputs.order.tolist() if present[r]]

    def units() -> Iterator[_Unit]:
        for row in eligible:
            text, words = swap_gender(inputs.texts[row], table)
            first = list(dict.fromkeys(words))
            change = ", ".join(f"{w} -> {table[w]}" for w in first[:3])
            yield _Unit(
                row, inputs.texts[row], (_Variant(text, change, words[0], table[words[0]]),)
            )

    coverage = len(eligible) / len(inputs.texts)
    return _Family(("counterfactual", "gender_swap"), units(), {"coverage": coverage})


def _descriptor_families(
    inputs: _Inputs, axes: Sequence[str] | None, n_replacements: int, seed: int
) -> list[_Family]:
    lexicon = holisticbias_descriptors()
    vocabulary = frozenset(t for terms in lexicon.values() for t in terms)
    found = [find_terms(t, vocabulary) for t in inputs.texts]  # one scan per text, all axes
    out = []
    for axis in axes or list(lexicon):
        members = set(lexicon[axis])
        firsts = {r: next((t for t in found[r] if t in members), None) for r in range(len(found))}
        rows = [r for r in inputs.order.tolist() if firsts[r] is not None]
        stream = _descriptor_units(
            inputs, rows, firsts, lexicon[axis], vocabulary, n_replacements, rng_key=(seed, axis)
        )
        detail = {"axis": axis, "coverage": len(rows) / len(inputs.texts)}
        out.append(_Family(("counterfactual", "holisticbias", axis), stream, detail))
    return out


def _descriptor_units(
    inputs: _Inputs,
    rows: list[int],
    firsts: Mapping[int, str | None],
    terms: tuple[str, ...],
    vocabulary: frozenset[str],
    n_replacements: int,
    *,
    rng_key: tuple[int, str],
) -> Iterator[_Unit]:
    """Per text, its first descriptor of the axis replaced by ``n_replacements`` others of it."""
    for row in rows:
        term = str(firsts[row])
        others = [t for t in terms if t != term]
        rng = rng_for(rng_key[0], f"holisticbias:{rng_key[1]}:{row}")
        picks = sorted(rng.choice(len(others), min(n_replacements, len(others)), replace=False))
        text = inputs.texts[row]
        variants = tuple(
            _Variant(
                replace_term(text, term, others[i], vocabulary=vocabulary),
                f"{term} -> {others[i]}",
                term,
                others[i],
            )
            for i in picks
        )
        yield _Unit(row, text, variants)


def _record_families(
    inputs: _Inputs, extras: Mapping[str, Any], sample_size: int, notes: list[str]
) -> list[_Family]:
    records = extras.get("records")
    render = extras.get("render")
    columns = list(extras.get("sensitive_in_text") or [])
    if records is None or len(records) == 0 or render is None:
        notes.append(
            "counterfactual record flips skipped: the audit has no records to re-render "
            "(free-text data, or a model audited without its data)"
        )
        return []
    if not columns:
        notes.append("counterfactual record flips skipped: no sensitive field is part of the text")
        return []
    out = []
    for column in columns:
        if column not in records.columns:
            notes.append(f"record flips of {column!r} skipped: the records lack that column")
            continue
        values = records[column]
        observed = sorted(pd.unique(values.dropna()).tolist(), key=str)
        if len(observed) < 2:
            notes.append(f"record flips of {column!r} skipped: it has a single observed value")
            continue
        present = values.notna().to_numpy()
        rows = [r for r in inputs.order.tolist() if present[r]][:sample_size]
        # original first, then every other observed value; one render call per column
        settings = [[values.iloc[r]] + [v for v in observed if v != values.iloc[r]] for r in rows]
        frame = records.iloc[np.repeat(rows, len(observed))].reset_index(drop=True)
        frame[column] = [v for s in settings for v in s]
        rendered = list(render(frame))
        units, mismatched = [], 0
        for i, (row, setting) in enumerate(zip(rows, settings, strict=True)):
            block = rendered[i * len(observed) : (i + 1) * len(observed)]
            mismatched += block[0] != inputs.texts[row]
            variants = tuple(
                _Variant(text, f"{column}: {setting[0]} -> {v}", str(setting[0]), str(v))
                for text, v in zip(block[1:], setting[1:], strict=True)
            )
            units.append(_Unit(row, block[0], variants))
        if mismatched:
            notes.append(
                f"{mismatched} re-rendered {column!r} records differ from the model texts; their "
                "flips are measured against the re-rendered originals"
            )
        detail = {
            "column": column,
            "values": [str(v) for v in observed],
            "coverage": float(present.mean()),
        }
        out.append(_Family(("counterfactual", "records", column), iter(units), detail))
    return out


# --------------------------------------------------------------------------------------------
# One model call, shared by all families.

_Key = tuple[Any, ...]
"""What the model sees of one input: (text, pair), or its token ids after truncation."""


class _ModelInputs:
    """Keys and model inputs of (row, text) pairs, and the distinct inputs queued for the call.

    When the context carries the run's tokenizer and ``max_length`` (as :func:`context_from_run`
    gives), a text is keyed by its token ids after truncation, exactly as training encodes it, so
    texts the model cannot tell apart share one row and an edit beyond ``max_length`` is counted
    as unseen; otherwise a text is keyed by itself.
    """

    def __init__(self, extras: Mapping[str, Any], pairs: list[str] | None) -> None:
        self.tokenizer = extras.get("tokenizer")
        self.max_length = extras.get("max_length")
        self.pairs = pairs
        self.queued: dict[_Key, tuple[str, str | None]] = {}
        self._positions: dict[_Key, int] = {}

    @property
    def tokenized(self) -> bool:
        return self.tokenizer is not None and self.max_length is not None

    def keys(self, row: int, texts: list[str]) -> list[_Key]:
        pair = None if self.pairs is None else self.pairs[row]
        if not self.tokenized:
            return [(text, pair) for text in texts]
        from ethos.models.encoding import encode  # the encoding the model was trained on

        encoded = encode(
            self.tokenizer,
            texts,
            None if pair is None else [pair] * len(texts),
            np.zeros(len(texts), np.int64),
            max_length=int(self.max_length),  # type: ignore[arg-type]
        )
        types: list[list[int] | None] = [None] * len(texts)
        if encoded.token_type_ids:
            types = [kinds for kinds in encoded.token_type_ids]
        return [
            (tuple(ids), None if kinds is None else tuple(kinds))
            for ids, kinds in zip(encoded.input_ids, types, strict=True)
        ]

    def index(self, key: _Key) -> int:
        return self._positions[key]

    def predict(self, context: AuditContext) -> np.ndarray:
        """One ``predict_proba`` call on every queued input, validated: (rows, K)."""
        self._positions = {key: i for i, key in enumerate(self.queued)}
        texts = [text for text, _ in self.queued.values()]
        if not texts:
            return np.zeros((0, 2))
        predict: Callable[..., Any] = context.predict_proba  # type: ignore[assignment]
        pairs = None if self.pairs is None else [str(p) for _, p in self.queued.values()]
        raw = predict(texts) if pairs is None else predict(texts, pairs)
        try:
            prob = np.asarray(raw, dtype=float)
        except (TypeError, ValueError) as exc:
            raise AuditError(
                f"predict_proba returned something that is not numbers: {exc}"
            ) from exc
        if prob.ndim == 1:
            prob = np.column_stack([1.0 - prob, prob])
        if prob.ndim != 2 or prob.shape[0] != len(texts) or prob.shape[1] < 2:
            raise AuditError(
                f"predict_proba returned shape {prob.shape} for {len(texts)} texts",
                hint="it must return one row of class probabilities per text, (n, K)",
            )
        if not np.isfinite(prob).all():
            raise AuditError("predict_proba returned NaN or infinite probabilities")
        return prob


def _allocate(
    families: list[_Family], inputs: _ModelInputs, *, sample_size: int, max_rows: int
) -> None:
    """Fill the families round-robin, one text each per round, within ``max_rows`` distinct inputs.

    A family stops at ``sample_size`` texts, when it runs out of texts, or when its next text does
    not fit; the distinct inputs end up in ``inputs.queued``.
    """
    progressed = True
    while progressed:
        progressed = False
        for family in families:
            if family.done:
                continue
            unit = next(family.units, None) if len(family.chosen) < sample_size else None
            if unit is None:
                family.done = True
                continue
            texts = [unit.original, *(v.text for v in unit.variants)]
            keys = inputs.keys(unit.row, texts)
            new = {k: t for k, t in zip(keys, texts, strict=True) if k not in inputs.queued}
            if len(inputs.queued) + len(new) > max_rows:
                family.done = True
                family.detail["_budget_stop"] = True
                continue
            pair = None if inputs.pairs is None else inputs.pairs[unit.row]
            inputs.queued.update({k: (t, pair) for k, t in new.items()})
            family.chosen.append(unit)
            family.keys.append(keys)
            progressed = True


def _stopped_by_budget(family: _Family, sample_size: int) -> bool:
    return bool(family.detail.get("_budget_stop")) and len(family.chosen) < sample_size


# --------------------------------------------------------------------------------------------
# Numbers per family.


def _probability_name(n_classes: int, names: list[Any]) -> str:
    if n_classes > 2:
        return "probability of the class predicted for the original text"
    return f"P({names[1]})" if len(names) == 2 else "P(positive)"


def _excerpts(original: str, perturbed: str) -> tuple[str, str]:
    """Both texts cut to the same window of about EXCERPT_CHARS around their first difference."""
    if max(len(original), len(perturbed)) <= EXCERPT_CHARS:
        return original, perturbed
    first = next(
        (i for i, (x, y) in enumerate(zip(original, perturbed, strict=False)) if x != y),
        min(len(original), len(perturbed)),
    )
    begin = max(0, min(first - EXCERPT_CHARS // 4, len(original) - EXCERPT_CHARS))

    def cut(text: str) -> str:
        head = "..." if begin > 0 else ""
        tail = "..." if begin + EXCERPT_CHARS < len(text) else ""
        return head + text[begin : begin + EXCERPT_CHARS] + tail

    return cut(original), cut(perturbed)


def _stats(flips: np.ndarray, delta: np.ndarray) -> dict[str, Any]:
    if len(flips) == 0:
        return {"n": 0, "flip_rate": float("nan"), "mean_abs_delta": float("nan")}
    return {
        "n": len(flips),
        "flip_rate": float(flips.mean()),
        "mean_abs_delta": float(np.abs(delta).mean()),
    }


def _by(keys: list[str | None], flips: np.ndarray, delta: np.ndarray) -> dict[str, Any]:
    """Stats per key (the replaced term or value), the MAX_GROUPS most frequent."""
    labels = np.array([str(k) for k in keys], dtype=object)
    counts = Counter(labels.tolist())
    ranked = sorted(counts, key=lambda value: (-counts[value], value))
    out = {}
    for value in ranked[:MAX_GROUPS]:
        mask = labels == value
        out[str(value)] = {**_stats(flips[mask], delta[mask]), "mean_delta": delta[mask].mean()}
    return out


def _family_section(
    family: _Family, model: _ModelInputs, prob: np.ndarray, n_worst: int
) -> dict[str, Any]:
    before, after, variants, originals = [], [], [], []
    for unit, keys in zip(family.chosen, family.keys, strict=True):
        for variant, key in zip(unit.variants, keys[1:], strict=True):
            before.append(model.index(keys[0]))
            after.append(model.index(key))
            variants.append(variant)
            originals.append(unit.original)
    b, a = np.array(before, dtype=np.int64), np.array(after, dtype=np.int64)
    decision = prob.argmax(axis=1)
    flips = (decision[a] != decision[b]) if len(b) else np.zeros(0, bool)
    column = 1 if prob.shape[1] == 2 else None
    p_before = prob[b, decision[b] if column is None else column] if len(b) else np.zeros(0)
    p_after = prob[a, decision[b] if column is None else column] if len(a) else np.zeros(0)
    delta = p_after - p_before

    out: dict[str, Any] = {"family": family.path[1]}
    out.update({k: v for k, v in family.detail.items() if not k.startswith("_")})
    out["n_texts"] = len(family.chosen)
    out.update(_stats(flips, delta))
    out["max_abs_delta"] = float(np.abs(delta).max()) if len(delta) else float("nan")
    out["n_unseen"] = int((a == b).sum())  # the edit changed nothing the model sees
    if family.counterfactual:
        out["mean_delta"] = float(delta.mean()) if len(delta) else float("nan")
        out["per_group"] = _by([v.source for v in variants], flips, delta)
        if family.path[1] == "records":
            out["per_target"] = _by([v.target for v in variants], flips, delta)
    ranking = sorted(range(len(delta)), key=lambda i: (not flips[i], -abs(delta[i]), i))
    worst = []
    for i in ranking[:n_worst]:
        original, perturbed = _excerpts(originals[i], variants[i].text)
        entry = {
            "original": original,
            "perturbed": perturbed,
            "p_before": float(p_before[i]),
            "p_after": float(p_after[i]),
            "flipped": bool(flips[i]),
        }
        if variants[i].change is not None:
            entry["change"] = variants[i].change
        worst.append(entry)
    out["worst"] = worst
    return out


def _maxima(sections: Mapping[tuple[str, ...], Mapping[str, Any]]) -> dict[str, Any]:
    """The largest flip rate overall, of the noise and of the counterfactual families."""

    def top(paths: list[tuple[str, ...]]) -> tuple[float, str | None]:
        rated = [(sections[p]["flip_rate"], ".".join(p)) for p in paths if sections[p]["n"] > 0]
        if not rated:
            return float("nan"), None
        rate = max(r for r, _ in rated)
        return float(rate), next(name for r, name in rated if r == rate)  # first of any ties

    every = list(sections)
    out: dict[str, Any] = {}
    for label, paths in (
        ("", every),
        ("noise_", [p for p in every if p[0] == "noise"]),
        ("counterfactual_", [p for p in every if p[0] == "counterfactual"]),
    ):
        rate, name = top(paths)
        out[f"max_{label}flip_rate"] = rate
        out[f"max_{label}flip_rate_family"] = name
    return out
