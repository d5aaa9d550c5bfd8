"""Text perturbations for the robustness check: character noise, casing, whitespace, word dropout,
and counterfactual swaps of identity terms.

Every noise function takes the text and a numpy ``Generator`` and returns the perturbed text; the
same generator state gives the same output, and no global random state is read or written. They
change ``max(1, round(rate * n))`` of the ``n`` eligible words (or whitespace runs), so every text
with something to perturb is perturbed, and leave every other character exactly as it was. A text
with nothing to perturb comes back unchanged, which callers treat as "not applicable".

Why not nlpaug's augmenters: ``KeyboardAug``, ``RandomCharAug`` and ``RandomWordAug`` work offline
but draw from the global ``random`` state and re-tokenise the whole text on the way out
("African-American" becomes "African - American", "didn't" becomes "didn ' t", newlines collapse),
so a measured flip could come from their tokenizer rather than from the typo. The operations are
therefore written here; keyboard typos use nlpaug's own QWERTY neighbour map (``res/char/keyboard/
en.json``, read without importing nlpaug, restricted to letter neighbours of letters).

Counterfactual swaps replace whole words only: a term matches where it is not preceded or followed
by a letter, digit, underscore or hyphen, so "man" is not found in "woman", "manly" or "man-made",
and "asian" not in "asian-american". Among overlapping terms the longest wins ("east asian" over
"asian"). Replacements keep the case pattern of what they replace (He -> She, MALE -> FEMALE).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from ethos.text import TextError
from ethos.text.lexicons import gender_swaps

Perturbation = Callable[..., str]
"""``(text, rng, *, rate) -> perturbed text``."""

_LETTERS = re.compile(r"[A-Za-z]{3,}")  # words keyboard typos and swaps may touch
_CASED = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # letters, any script ("isn't" is one)
_WORD = re.compile(r"\w[\w'-]*")  # a droppable word ("didn't", "African-American" are one)
_SPACE = re.compile(r"\s+")
_WHITESPACE_FORMS = ("  ", "\t", "\n", " \n ")
_EDGE_BEFORE = r"(?<![\w-])"
_EDGE_AFTER = r"(?![\w-])"
_Node = dict[str, "_Node"]


def _pick(n: int, rate: float, rng: np.random.Generator) -> list[int]:
    """``max(1, round(rate * n))`` distinct indices out of ``n``, in increasing order."""
    if n == 0:
        return []
    k = min(n, max(1, round(rate * n)))
    return sorted(int(i) for i in rng.choice(n, size=k, replace=False))


def _splice(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end) span replaced; spans must not overlap."""
    out, last = [], 0
    for start, end, new in sorted(spans):
        out.append(text[last:start])
        out.append(new)
        last = end
    out.append(text[last:])
    return "".join(out)


@cache
def keyboard_neighbours() -> dict[str, tuple[str, ...]]:
    """Lower-case letter -> the letters next to it on a QWERTY keyboard (nlpaug's en map)."""
    spec = find_spec("nlpaug")
    if spec is None or not spec.submodule_search_locations:
        raise TextError(
            "keyboard typos need nlpaug's keyboard map, but nlpaug is not installed",
            hint="pip install 'ethos[audit]', or leave char_keyboard out of the families",
        )
    path = (
        Path(next(iter(spec.submodule_search_locations))) / "res" / "char" / "keyboard" / "en.json"
    )
    raw = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, tuple[str, ...]] = {}
    for key, values in raw.items():
        if len(key) == 1 and key.isalpha():
            letters = [v for v in values if len(v) == 1 and v.isalpha() and v != key]
            out[key] = tuple(dict.fromkeys(letters))
    return out


def keyboard_typos(text: str, rng: np.random.Generator, *, rate: float = 0.1) -> str:
    """Replace one letter in a ``rate`` share of the words (3+ ASCII letters) by a keyboard
    neighbour, keeping its case: the fat-finger typo of a real user."""
    neighbours = keyboard_neighbours()
    words = [m for m in _LETTERS.finditer(text)]
    spans = []
    for i in _pick(len(words), rate, rng):
        match = words[i]
        position = match.start() + int(rng.integers(len(match.group())))
        char = text[position]
        options = neighbours.get(char.lower(), ())
        if not options:
            continue
        new = options[int(rng.integers(len(options)))]
        spans.append((position, position + 1, new.upper() if char.isupper() else new))
    return _splice(text, spans)


def char_swaps(text: str, rng: np.random.Generator, *, rate: float = 0.1) -> str:
    """Swap two adjacent, different letters in a ``rate`` share of the words (3+ ASCII letters)."""
    words = [m for m in _LETTERS.finditer(text) if len(set(m.group().lower())) > 1]
    spans = []
    for i in _pick(len(words), rate, rng):
        word = words[i].group()
        positions = [j for j in range(len(word) - 1) if word[j] != word[j + 1]]
        j = positions[int(rng.integers(len(positions)))]
        start = words[i].start() + j
        spans.append((start, start + 2, word[j + 1] + word[j]))
    return _splice(text, spans)


def random_casing(text: str, rng: np.random.Generator, *, rate: float = 0.1) -> str:
    """Rewrite a ``rate`` share of the words in another case (lower, UPPER or Title); the letters
    themselves stay, so ``text.lower()`` is unchanged."""
    words = []
    for match in _CASED.finditer(text):
        word = match.group()
        title = word[:1].upper() + word[1:].lower()  # str.title() would give "Isn'T"
        forms = [f for f in dict.fromkeys((word.lower(), word.upper(), title)) if f != word]
        if forms and all(len(f) == len(word) for f in forms):
            words.append((match, forms))
    spans = []
    for i in _pick(len(words), rate, rng):
        match, forms = words[i]
        spans.append((match.start(), match.end(), forms[int(rng.integers(len(forms)))]))
    return _splice(text, spans)


def whitespace_noise(text: str, rng: np.random.Generator, *, rate: float = 0.1) -> str:
    """Replace a ``rate`` share of the whitespace runs by another (double space, tab, newline);
    the words and their order stay, so ``text.split()`` is unchanged."""
    runs = list(_SPACE.finditer(text))
    spans = []
    for i in _pick(len(runs), rate, rng):
        forms = [f for f in _WHITESPACE_FORMS if f != runs[i].group()]
        spans.append((runs[i].start(), runs[i].end(), forms[int(rng.integers(len(forms)))]))
    return _splice(text, spans)


def word_dropout(text: str, rng: np.random.Generator, *, rate: float = 0.1) -> str:
    """Delete a ``rate`` share of the words (at least one, never all) with the whitespace after
    them (before them at the end of a line); punctuation stays."""
    words = list(_WORD.finditer(text))
    if len(words) < 2:
        return text
    chosen = _pick(len(words), rate, rng)[: len(words) - 1]
    spans = []
    for i in chosen:
        start, end = words[i].span()
        after = _SPACE.match(text, end)
        if after is not None:
            end = after.end()
        elif start > 0 and text[start - 1].isspace():
            start -= 1
        spans.append((start, end, ""))
    merged: list[tuple[int, int, str]] = []
    for start, end, new in sorted(spans):  # a word's trailing space can meet the next word
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), "")
        else:
            merged.append((start, end, new))
    return _splice(text, merged)


NOISE: dict[str, Perturbation] = {
    "char_keyboard": keyboard_typos,
    "char_swap": char_swaps,
    "casing": random_casing,
    "whitespace": whitespace_noise,
    "word_dropout": word_dropout,
}
"""The noise families of the robustness check: family name -> perturbation."""


# --------------------------------------------------------------------------------------------
# Counterfactual swaps of identity terms.


def match_case(source: str, replacement: str) -> str:
    """``replacement`` in the case pattern of ``source``: HE -> SHE, He -> She, he -> she.

    A capitalised source capitalises every word of the replacement (Asian -> South Asian,
    Asian-American): most capitalised descriptors are proper nouns, not sentence starts.
    """
    if len(source) > 1 and source.isupper():
        return replacement.upper()
    if source[:1].isupper():
        return "".join(part[:1].upper() + part[1:] for part in re.split(r"([ -])", replacement))
    return replacement


def _trie(terms: Iterable[str]) -> str:
    """A regex matching any of ``terms``, as a character trie: about ten times faster than a flat
    alternation of a few hundred descriptors, and longest-first by construction."""
    root: _Node = {}
    for term in terms:
        node = root
        for char in term:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: _Node) -> str:
        branches = [re.escape(c) + build(child) for c, child in sorted(node.items()) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


@cache
def term_pattern(terms: frozenset[str]) -> re.Pattern[str]:
    """A case-insensitive pattern finding whole-word occurrences of ``terms``, longest first."""
    if not terms:
        raise ValueError("term_pattern needs at least one term")
    lowered = sorted({t.lower() for t in terms})
    return re.compile(_EDGE_BEFORE + "(?:" + _trie(lowered) + ")" + _EDGE_AFTER, re.IGNORECASE)


def find_terms(text: str, terms: Iterable[str]) -> list[str]:
    """The ``terms`` occurring in ``text`` as whole words, lower-cased, in order of occurrence."""
    return [m.group().lower() for m in term_pattern(frozenset(terms)).finditer(text)]


def replace_term(text: str, term: str, replacement: str, *, vocabulary: Iterable[str] = ()) -> str:
    """Replace every whole-word occurrence of ``term`` by ``replacement``, case-preservingly.

    ``vocabulary`` lists the other terms of the lexicon: an occurrence of ``term`` inside a longer
    vocabulary term (``asian`` in ``east asian``) is part of that term and is left alone.
    """
    pattern = term_pattern(frozenset({term, *vocabulary}))
    target = term.lower()
    return pattern.sub(
        lambda m: match_case(m.group(), replacement) if m.group().lower() == target else m.group(),
        text,
    )


def swap_gender(text: str, swaps: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """Swap every gendered word for its counterpart at once (he <-> she, actress -> actor).

    Returns the swapped text and the lower-cased words that were swapped, in order. ``swaps``
    defaults to the vendored lexicon (:func:`ethos.text.lexicons.gender_swaps`). One-to-many
    pairs are resolved by the lexicon ("her" becomes "him" even where "his" is meant), a known
    limitation of word-list counterfactuals (Lu et al. 2020, "Gender Bias in Neural Natural Language
    Processing").
    """
    table = gender_swaps() if swaps is None else {k.lower(): v for k, v in swaps.items()}
    swapped: list[str] = []

    def one(match: re.Match[str]) -> str:
        word = match.group()
        swapped.append(word.lower())
        return match_case(word, table[word.lower()])

    return term_pattern(frozenset(table)).sub(one, text), swapped
