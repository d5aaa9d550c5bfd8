"""Which small groups decide a policy's constraints: warnings for `ethos gate` to print.

A disparity such as the equalized-odds difference is a gap between two groups' rates, so it is
*decided* by the group with the highest rate and the group with the lowest (of the groups large
enough to be compared). When either rests on few rows the gap is mostly noise: a true-positive
rate from 4 positives moves in steps of 0.25. :func:`small_group_warnings` names, for every
constraint, the groups or intersections its value comes from whose rate was computed from fewer
than ``floor`` rows (default :data:`~ethos.audit.sample_size.RELIABLE_GROUP_SIZE`, 30), with that
number of rows. The rows counted are the rate's own denominator, not only the group size: a TPR is
computed from the group's positives, an FPR from its negatives, a PPV from its predicted positives
(definitions as in :mod:`ethos.audit.fairness`). The numbers are recovered from audit.json's group
rows: positives = count x base_rate, predicted positives = count x selection_rate.

Pure: it reads only the constraints and the audit, and returns sentences; the caller prints them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ethos.audit.sample_size import RELIABLE_GROUP_SIZE, half_width
from ethos.governance.metric_paths import lookup
from ethos.governance.policy import Constraint, Policy
from ethos.governance.scorecard import ConstraintResult, Scorecard

RATES: dict[str, tuple[str, ...]] = {
    "demographic_parity_difference": ("selection_rate",),
    "demographic_parity_ratio": ("selection_rate",),
    "disparate_impact_ratio": ("selection_rate",),
    "equal_opportunity_difference": ("tpr",),
    "equalized_odds_difference": ("tpr", "fpr"),
    "equalized_odds_ratio": ("tpr", "fpr"),
    "predictive_parity_difference": ("ppv",),
}
"""Disparity -> the group rates it is a gap or ratio of (``ethos.audit.fairness.DISPARITIES``)."""

DENOMINATORS: dict[str, str] = {
    "selection_rate": "rows",
    "accuracy": "rows",
    "base_rate": "rows",
    "tpr": "positives",
    "fnr": "positives",
    "fpr": "negatives",
    "ppv": "predicted positives",
    "npv": "predicted negatives",
}
"""Group rate -> what it is computed from (its denominator)."""


@dataclass(frozen=True)
class _Item:
    """A constraint as this module needs it, whatever it was given as."""

    label: str
    metric: str
    op: str
    status: str | None


def _items(given: Any) -> list[_Item]:
    """Scorecard, Policy, or an iterable of ConstraintResult / Constraint / decision.json dicts."""
    if isinstance(given, Scorecard | Policy):
        given = given.constraints
    items = []
    for c in given:
        if isinstance(c, ConstraintResult):
            items.append(_Item(c.label, c.metric, c.op, c.status))
        elif isinstance(c, Constraint):
            items.append(_Item(c.label, c.metric, c.op, None))
        elif isinstance(c, Mapping):
            label = str(c.get("label") or c.get("name") or c.get("metric"))
            items.append(_Item(label, str(c["metric"]), str(c["op"]), c.get("status")))
    return items


def _walk(node: Any, path: str) -> list[tuple[str, Any]]:
    """The (key, node) pairs along a dotted ``path``; keys may themselves hold dots (a group
    called "St. Louis"), so at each level the longest key that fits is taken."""
    visited: list[tuple[str, Any]] = []
    rest = path
    while rest and isinstance(node, Mapping):
        fits = [k for k in node if rest == k or rest.startswith(f"{k}.")]
        if not fits:
            break
        key = max(fits, key=len)
        node = node[key]
        visited.append((key, node))
        rest = rest[len(key) + 1 :]
    return visited


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _rows_behind(row: Mapping[str, Any], rate: str) -> int | None:
    """How many rows a group's ``rate`` was computed from (its denominator)."""
    count = _number(row.get("count"))
    if count is None:
        return None
    base, selected = _number(row.get("base_rate")), _number(row.get("selection_rate"))
    share = {
        "positives": base,
        "negatives": None if base is None else 1 - base,
        "predicted positives": selected,
        "predicted negatives": None if selected is None else 1 - selected,
    }.get(DENOMINATORS.get(rate, "rows"), 1.0)
    return None if share is None else round(count * share)


def _spread(values: list[float], ratio: bool) -> float:
    low, high = min(values), max(values)
    if ratio:
        return low / high if high > 0 else math.nan
    return high - low


def _deciding_groups(
    groups: Mapping[str, Any], disparity: str, value: float
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(group, rate, row) for the groups with the highest and the lowest rate of the rate the
    disparity's value comes from (for equalized odds, whichever of TPR and FPR gives it)."""
    used = {
        g: row
        for g, row in groups.items()
        if isinstance(row, Mapping) and row.get("used_for_disparities", True)
    }
    best: tuple[float, str] | None = None
    for rate in RATES.get(disparity, ()):
        defined = [v for row in used.values() if (v := _number(row.get(rate))) is not None]
        if len(defined) < 2:
            continue
        distance = abs(_spread(defined, disparity.endswith("_ratio")) - value)
        if best is None or distance < best[0]:
            best = (distance, rate)
    if best is None:
        return []
    rate = best[1]
    values = {g: v for g, row in used.items() if (v := _number(row.get(rate))) is not None}
    extremes = (min(values.values()), max(values.values()))
    return [
        (g, rate, used[g])
        for g, v in values.items()
        if any(math.isclose(v, e, abs_tol=1e-12) for e in extremes)
    ]


def _fairness_entry(
    visited: list[tuple[str, Any]],
) -> tuple[str, Mapping[str, Any], str | None, str | None]:
    """From a walk into ``fairness``: the attribute, the entry whose groups hold the rates (a
    class's entry for a one-vs-rest path or a multiclass worst case), and the disparity or the
    single group the path names."""
    attribute, entry = visited[1][0], visited[1][1]
    keys = [k for k, _ in visited[2:]]
    if keys[:1] == ["classes"] and len(keys) >= 2:
        entry = entry["classes"][keys[1]]
        keys = keys[2:]
    if keys[:1] == ["groups"] and len(keys) >= 2:
        return attribute, entry, None, keys[1]
    if keys[:1] == ["disparities"] and len(keys) >= 2:
        return attribute, entry, keys[1], None
    return attribute, entry, None, None


def _class_entry(entry: Mapping[str, Any], disparity: str, value: float) -> Mapping[str, Any]:
    """For a multiclass attribute's worst-case disparity, the class entry it comes from."""
    for class_entry in (entry.get("classes") or {}).values():
        found = _number(((class_entry.get("disparities") or {}).get(disparity) or {}).get("value"))
        if found is not None and math.isclose(found, value, abs_tol=1e-12):
            return dict(class_entry)
    return entry


def _message(
    item: _Item, resolved: str, value: float, where: str, detail: str, rows: int, floor: int
) -> str:
    status = f" ({item.status})" if item.status else ""
    return (
        f"constraint '{item.label}'{status}: {resolved} = {value:.4g} is decided by {where} "
        f"({detail}); below {floor} rows a rate's 95% interval is up to ±{half_width(rows):.2f}"
    )


def _constraint_warnings(item: _Item, audit: Mapping[str, Any], floor: int) -> list[str]:
    found = lookup({"audit": audit}, item.metric, larger_is_worse=item.op in ("<=", "<"))
    if found.value is None or not found.resolved.startswith("audit."):
        return []
    resolved = found.resolved.removeprefix("audit.")
    visited = _walk(audit, resolved)
    out = []
    if len(visited) >= 2 and visited[0][0] == "fairness":
        attribute, entry, disparity, group = _fairness_entry(visited)
        if disparity is not None and "classes" in entry:
            entry = _class_entry(entry, disparity, found.value)
        groups = entry.get("groups") or {}
        if group is not None:
            leaf = resolved.rsplit(".", 1)[-1]
            deciding = [(group, leaf, groups[group])] if group in groups else []
        elif disparity is not None:
            deciding = _deciding_groups(groups, disparity, found.value)
        else:
            deciding = []
        for name, rate, row in deciding:
            n = int(_number(row.get("count")) or 0)
            behind = _rows_behind(row, rate)
            rows = n if behind is None else min(n, behind)
            if rows < floor:
                what = DENOMINATORS.get(rate, "rows")
                shown = _number(row.get(rate))
                detail = f"{rate} {shown:.3f} from {behind} {what}" if shown is not None else rate
                where = f"{attribute}={name} (n={n})"
                out.append(_message(item, resolved, found.value, where, detail, rows, floor))
        return out
    counted = [(k, node) for k, node in visited if isinstance(node, Mapping)]
    counted = [(k, node) for k, node in counted if _number(node.get("count")) is not None]
    if counted:
        key, node = counted[-1]
        n = int(node["count"])
        if n < floor:
            detail = f"computed on {n} rows"
            out.append(_message(item, resolved, found.value, f"'{key}'", detail, n, floor))
    return out


def small_group_warnings(
    scorecard_or_constraints: Scorecard | Policy | Iterable[Any],
    audit: Mapping[str, Any],
    *,
    floor: int = RELIABLE_GROUP_SIZE,
) -> list[str]:
    """One sentence per (constraint, deciding group) whose rate rests on fewer than ``floor`` rows.

    ``scorecard_or_constraints``: a :class:`Scorecard` (what ``score_run`` returns), a
    :class:`Policy`, or an iterable of :class:`ConstraintResult`, :class:`Constraint` or
    decision.json constraint dicts (``label``, ``metric``, ``op``, optional ``status``).
    ``audit``: the parsed audit.json. Constraints on metrics.json or the manifest, missing values,
    and groups at or above the floor give nothing. The same metric is resolved as the scorecard
    resolves it (a ``*`` takes the worst attribute), so the groups named are those behind the
    value the decision used.
    """
    out: list[str] = []
    for item in _items(scorecard_or_constraints):
        if item.status == "missing":
            continue
        for message in _constraint_warnings(item, audit, floor):
            if message not in out:
                out.append(message)
    return out
