"""Identity-term lexicons for counterfactual swaps and for attribution on identity terms.

Two vendored sources (see PROVENANCE.md): gendered word pairs, and the HolisticBias descriptors by
demographic axis. Both are read once and cached; terms are lower-cased for matching.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources

GENDER_SWAPS = "gender_swaps.txt.gz"
HOLISTICBIAS = "holisticbias_descriptors_v1.1.json.gz"


def _read(name: str) -> bytes:
    return gzip.decompress((resources.files("ethos.text.lexicons") / name).read_bytes())


@cache
def gender_swaps() -> dict[str, str]:
    """Lower-case word -> its gendered counterpart (both directions present, e.g. he <-> she)."""
    pairs: dict[str, str] = {}
    for line in _read(GENDER_SWAPS).decode("utf-8").splitlines():
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) == 2 and all(parts):
            source, target = parts[0].lower(), parts[1].lower()
            pairs.setdefault(source, target)
            pairs.setdefault(target, source)
    return pairs


@cache
def holisticbias_descriptors(*, include_dispreferred: bool = False) -> dict[str, tuple[str, ...]]:
    """Axis (race_ethnicity, religion, ...) -> its descriptors, lower-cased, in file order.

    Descriptors tagged 'dispreferred' (slurs and outdated terms) are left out unless asked for:
    a swap should not put them into a reviewer's report.
    """
    raw = json.loads(_read(HOLISTICBIAS).decode("utf-8"))
    axes: dict[str, tuple[str, ...]] = {}
    for axis, buckets in raw.items():
        terms: list[str] = []
        entries = buckets.values() if isinstance(buckets, dict) else [buckets]
        for entry in entries:
            for item in entry:
                if isinstance(item, str):
                    term, preference = item, "reviewed"
                else:
                    term, preference = item["descriptor"], item.get("preference", "reviewed")
                if preference == "dispreferred" and not include_dispreferred:
                    continue
                if term.lower() not in terms:
                    terms.append(term.lower())
        axes[axis] = tuple(terms)
    return axes


@cache
def identity_terms() -> frozenset[str]:
    """Every single-word identity term from both lexicons (for attribution-mass measures)."""
    words = set(gender_swaps())
    for terms in holisticbias_descriptors(include_dispreferred=True).values():
        words.update(t for t in terms if " " not in t)
    return frozenset(words)
