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
from ethos.governance.deciding_groups import (
    DENOMINATORS,
    deciding_groups,
    number,
    rows_behind,
)
from ethos.governance.metric_paths import lookup
from ethos.governance.policy import Constraint, Policy
from ethos.governance.scorecard import ConstraintResult, Scorecard


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
        found = number(((class_entry.get("disparities") or {}).get(disparity) or {}).get("value"))
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
            deciding = deciding_groups(groups, disparity, found.value)
        else:
            deciding = []
        for name, rate, row in deciding:
            n = int(number(row.get("count")) or 0)
            behind = rows_behind(row, rate)
            rows = n if behind is None else min(n, behind)
            if rows < floor:
                what = DENOMINATORS.get(rate, "rows")
                shown = number(row.get(rate))
                detail = f"{rate} {shown:.3f} from {behind} {what}" if shown is not None else rate
                where = f"{attribute}={name} (n={n})"
                out.append(_message(item, resolved, found.value, where, detail, rows, floor))
        return out
    counted = [(k, node) for k, node in visited if isinstance(node, Mapping)]
    counted = [(k, node) for k, node in counted if number(node.get("count")) is not None]
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
