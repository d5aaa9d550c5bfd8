"""Sample-size warnings: the groups and intersections whose rates rest on too few rows.

Why. A rate estimated from n rows has a standard error of sqrt(p(1 - p) / n) <= 0.5 / sqrt(n), so
its 95 % interval is up to about ±1.96 * 0.5 / sqrt(n) wide: ±0.18 at n = 30, ±0.44 at n = 5.
A disparity is a difference of such rates, and a 4-row intersection can make a gap of 0.5 out of
one row. Below :data:`RELIABLE_GROUP_SIZE` rows the audit still compares a group (when it reaches
the run's ``min_group_size``), but says the rate is unreliable; groups below ``min_group_size`` are
left out of the disparities and listed too, so nothing is dropped silently.

The floor of 30 is the usual rule of thumb for a normal-approximation interval of a proportion;
even there the Wald interval's coverage is poor for rates near 0 or 1 (Agresti & Coull 1998,
"Approximate is better than 'exact' for interval estimation of binomial proportions";
Brown, Cai & DasGupta 2001), so it is a minimum, not a guarantee.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

RELIABLE_GROUP_SIZE = 30
"""Below this many rows a group's rates are flagged as unreliable (see the module docstring)."""


def half_width(n: float) -> float:
    """The widest 95 % normal-approximation half-interval of a rate from ``n`` rows:
    1.96 * sqrt(0.25 / n) (at p = 0.5); infinite for n < 1."""
    return math.inf if n < 1 else 1.96 * math.sqrt(0.25 / n)


def _groups(entry: Mapping[str, Any]) -> list[tuple[str, int, bool]]:
    """(group, count, used for disparities) for an attribute's section."""
    found = []
    for group, row in (entry.get("groups") or {}).items():
        if isinstance(row, Mapping) and isinstance(row.get("count"), int | float):
            found.append((str(group), int(row["count"]), bool(row.get("used_for_disparities"))))
    return found


def group_size_warnings(
    fairness: Mapping[str, Any], *, floor: int = RELIABLE_GROUP_SIZE
) -> list[dict[str, Any]]:
    """Every group or intersection of a fairness section with fewer than ``floor`` rows, or left
    out for being under the section's ``min_group_size``, smallest first within each attribute.

    Each warning is ``{"attribute", "group", "n", "used", "message"}``; ``used`` says whether the
    group enters the disparities (and so can decide a policy constraint).
    """
    warnings = []
    for attribute, entry in fairness.items():
        if not isinstance(entry, Mapping):
            continue
        minimum = entry.get("min_group_size")
        for group, n, used in sorted(_groups(entry), key=lambda item: item[1]):
            if used and n >= floor:
                continue
            where = f"{attribute}={group} n={n}"
            if used:
                message = (
                    f"{where}: compared, but rates from fewer than {floor} rows are unreliable "
                    f"(95% interval up to ±{half_width(n):.2f})"
                )
            else:
                message = f"{where}: left out of the disparities (min_group_size {minimum})"
            warnings.append(
                {
                    "attribute": str(attribute),
                    "group": group,
                    "n": n,
                    "used": used,
                    "message": message,
                }
            )
    return warnings


def _by_attribute(found: list[dict[str, Any]]) -> list[str]:
    """One line per attribute naming its small groups with their n, left-out ones apart."""
    lines: dict[str, tuple[list[str], list[str]]] = {}
    for w in found:
        compared, left_out = lines.setdefault(w["attribute"], ([], []))
        (compared if w["used"] else left_out).append(f"{w['group']} n={w['n']}")
    out = []
    for attribute, (compared, left_out) in lines.items():
        parts = [", ".join(compared)] if compared else []
        if left_out:
            parts.append("left out: " + ", ".join(left_out))
        out.append(f"{attribute}: {'; '.join(parts)}")
    return out


def sample_size_screen(audit: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's sample-size screen: ``{"status", "reasons", "warnings"}``.

    Amber when a compared group is under the floor, green when every compared group reaches it
    (groups left out are still listed), grey without a fairness section. ``reasons`` is short
    enough for a terminal line: a count, then one line per attribute naming each small group with
    its n; ``warnings`` holds every group's full sentence (:func:`group_size_warnings`).
    """
    fairness = audit.get("fairness")
    if not isinstance(fairness, Mapping) or not fairness:
        return {"status": "grey", "reasons": ["not measured"], "warnings": []}
    found = group_size_warnings(fairness)
    if not found:
        reason = f"every group and intersection has at least {RELIABLE_GROUP_SIZE} rows"
        return {"status": "green", "reasons": [reason], "warnings": []}
    compared = sum(w["used"] for w in found)
    head = (
        f"{compared} compared group(s) under {RELIABLE_GROUP_SIZE} rows (rates unreliable), "
        f"{len(found) - compared} left out under min_group_size"
    )
    return {
        "status": "amber" if compared else "green",
        "reasons": [head, *_by_attribute(found)],
        "warnings": found,
    }
