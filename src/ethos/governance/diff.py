"""`ethos diff PARENT CHILD`: what a fine-tune changed, measured on the rows both were tested on.

Two audits of two runs each carry intervals, but the difference of two numbers with intervals is
not the interval of their difference: the same test rows make the two runs' errors correlated,
and only a paired comparison uses that. So the diff re-scores both runs' stored test predictions
(``predictions.parquet``) on the parent's test rows, found by id in the child (whose test part may
add held-out feedback rows), and bootstraps the change of every metric on the same resampled rows
(:func:`ethos.stats.paired.paired_bootstrap`): accuracy and, for binary tasks, AUROC; for every
group attribute each group's selection rate, TPR and FPR, and the equalized-odds difference
between the groups the audit compares (at least the run's ``min_group_size`` rows).
Beside them: the two gate decisions, W and each constraint's status, side by side, and which
constraints changed status and why (the values behind them); each constraint with the paired
change and interval of its quantity where the diff measures it (accuracy, AUROC, an attribute's
equalized-odds difference); and every number of both audits (``audits``: values and changes, and
what only one of them reports). W, the other constraints and the audit numbers are compared as
recorded, without intervals: they are functions of the whole audit (explanations, robustness,
membership inference, ...), which would have to be re-run per resample.

Refused, with nothing written: runs of different tasks or label sets, a parent test row the child
was not tested on (unrelated runs, or a parent whose data changed), and rows the two runs label
differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ethos.audit.protocol import to_jsonable
from ethos.errors import DataError
from ethos.rundir import RunDir
from ethos.stats.paired import (
    Metric,
    Predictions,
    align_rows,
    auroc,
    equalized_odds_difference,
    group_rate,
    paired_bootstrap,
)
from ethos.stats.paired import accuracy as accuracy_metric

GROUP_PREFIX = "group_"
RATES = ("selection", "tpr", "fpr")


@dataclass(frozen=True)
class Paired:
    """Both runs' test predictions on the parent's test rows, in the parent's order."""

    ids: np.ndarray
    y_true: np.ndarray
    parent: Predictions
    child: Predictions
    groups: dict[str, np.ndarray]
    """Attribute -> the group of each row (the parent's record of it)."""
    binary: bool


def diff_runs(parent: RunDir, child: RunDir, *, n_resamples: int = 1000, seed: int = 0) -> Any:
    """The governance diff of ``child`` against ``parent`` (see the module docstring)."""
    paired = pair_predictions(parent, child)
    min_group_size = parent.config.data.min_group_size
    metrics: dict[str, Any] = {}
    overall: dict[str, Metric] = {"accuracy": accuracy_metric}
    if paired.binary:
        overall["auroc"] = auroc
    deltas = paired_bootstrap(
        paired.y_true, paired.parent, paired.child, overall, n_resamples=n_resamples, seed=seed
    )
    metrics.update({name: d.to_dict() for name, d in deltas.items()})
    groups_out: dict[str, Any] = {}
    for attribute, values in paired.groups.items():
        names, codes = np.unique(values.astype(str), return_inverse=True)
        # The audit's rule: groups below the run's min_group_size (on these rows, which are the
        # parent's audited test rows) are not compared, so the gap is the audit's gap.
        used = np.flatnonzero(np.bincount(codes, minlength=len(names)) >= min_group_size)
        per_group: dict[str, Metric] = {}
        if paired.binary:
            for code, name in enumerate(names):
                for rate in RATES:
                    per_group[f"{name}|{rate}"] = group_rate(rate, code)
            per_group["equalized_odds_difference"] = equalized_odds_difference(among=used.tolist())
        found = paired_bootstrap(
            paired.y_true,
            paired.parent,
            paired.child,
            per_group,
            groups=codes,
            n_resamples=n_resamples,
            seed=seed,
        )
        rates: dict[str, dict[str, Any]] = {}
        for key, delta in found.items():
            if key == "equalized_odds_difference":
                continue
            name, rate = key.split("|")
            rates.setdefault(name, {})[rate] = delta.to_dict()
        groups_out[attribute] = {
            "groups": rates,
            "compared_groups": [str(names[c]) for c in used],
            "min_group_size": min_group_size,
            "equalized_odds_difference": found["equalized_odds_difference"].to_dict()
            if "equalized_odds_difference" in found
            else None,
        }
    return to_jsonable(  # undefined deltas (a group without positives) are null, not NaN
        {
            "parent": _identity(parent),
            "child": _identity(child),
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": {
                "shared_test_rows": len(paired.ids),
                "predictions_changed": int(
                    np.count_nonzero(_labels(paired.parent) != _labels(paired.child))
                ),
            },
            "bootstrap": {"n_resamples": n_resamples, "seed": seed, "confidence": 0.95},
            "metrics": metrics,
            "fairness": groups_out,
            "decisions": compare_decisions(parent.decision(), child.decision()),
            "constraints": paired_constraints(
                parent.decision(), child.decision(), metrics, groups_out
            ),
            "audits": compare_audits(parent.audit(), child.audit()),
        }
    )


def paired_constraints(
    parent: dict[str, Any] | None,
    child: dict[str, Any] | None,
    metrics: dict[str, Any],
    fairness: dict[str, Any],
) -> list[dict[str, Any]]:
    """Each policy constraint in both decisions: both values and statuses, and the paired
    change with its interval where the diff measures the constrained quantity on the shared rows
    (test accuracy and AUROC, an attribute's equalized-odds difference); None elsewhere."""
    before = {c["label"]: c for c in (parent or {}).get("constraints") or []}
    after = {c["label"]: c for c in (child or {}).get("constraints") or []}
    out = []
    for label in [*before, *(k for k in after if k not in before)]:
        first, second = before.get(label) or {}, after.get(label) or {}
        metric = str(second.get("metric") or first.get("metric") or "")
        out.append(
            {
                "constraint": label,
                "metric": metric,
                "op": second.get("op", first.get("op")),
                "limit": second.get("limit", first.get("limit")),
                "parent": {k: first.get(k) for k in ("value", "status")} if first else None,
                "child": {k: second.get(k) for k in ("value", "status")} if second else None,
                "paired": _paired_delta(metric, metrics, fairness),
            }
        )
    return out


def _paired_delta(
    metric: str, metrics: dict[str, Any], fairness: dict[str, Any]
) -> dict[str, Any] | None:
    parts = metric.split(".")
    if len(parts) == 3 and parts[:2] == ["metrics", "test"]:
        found = metrics.get(parts[2])
        return dict(found) if isinstance(found, dict) else None
    if (
        len(parts) == 5
        and parts[0] == "fairness"
        and parts[2:] == ["disparities", "equalized_odds_difference", "value"]
    ):
        section = fairness.get(parts[1]) or {}
        found = section.get("equalized_odds_difference")
        return dict(found) if isinstance(found, dict) else None
    return None


def audit_numbers(node: Any, path: tuple[str, ...] = ()) -> dict[str, float]:
    """Every number an audit reports, by its dotted path (``meta`` and lists of per-row or
    per-bin values apart: those are evidence, not metrics)."""
    if isinstance(node, bool):
        return {}
    if isinstance(node, int | float):
        return {".".join(path): float(node)} if np.isfinite(node) else {}
    if not isinstance(node, dict):
        return {}
    found: dict[str, float] = {}
    for key, value in node.items():
        if not path and key == "meta":
            continue
        found.update(audit_numbers(value, (*path, str(key))))
    return found


def compare_audits(parent: dict[str, Any] | None, child: dict[str, Any] | None) -> dict[str, Any]:
    """Every metric of both audits side by side: both values and the change where both have it,
    and the metrics only one of them reports. As the gate recorded them, without intervals (the
    paired intervals are in ``metrics`` and ``fairness``)."""
    before, after = audit_numbers(parent or {}), audit_numbers(child or {})
    return {
        "compared": {
            name: {
                "parent": before[name],
                "child": after[name],
                "delta": after[name] - before[name],
            }
            for name in sorted(set(before) & set(after))
        },
        "only_parent": {name: before[name] for name in sorted(set(before) - set(after))},
        "only_child": {name: after[name] for name in sorted(set(after) - set(before))},
    }


def write_diff(parent: RunDir, child: RunDir, **options: Any) -> tuple[dict[str, Any], Path]:
    """:func:`diff_runs`, written to the child's ``diff.json`` (only once it is complete); the
    child's report page and model card, where they exist, are drawn again to show it."""
    from ethos.audit.runner import refresh_report
    from ethos.governance.card import write_card

    diff = diff_runs(parent, child, **options)
    path = child.write_document(child.diff_path, diff)
    if child.audit_path.is_file():
        refresh_report(child)
    if child.card_path.is_file():
        write_card(child)
    return diff, path


def pair_predictions(parent: RunDir, child: RunDir) -> Paired:
    """Both runs' test predictions lined up on the parent's test rows (refused when they cannot
    be: see the module docstring)."""
    for run in (parent, child):
        if run.config.task != "classification":
            raise DataError(
                f"{run.path} is a {run.config.task} run; ethos diff compares classifiers"
            )
    labels = [run.manifest["data"].get("label_names") for run in (parent, child)]
    if labels[0] != labels[1]:
        raise DataError(
            f"the runs predict different labels ({labels[0]} and {labels[1]})",
            hint="diff a child with the run it was trained from",
        )
    first, second = _test_rows(parent), _test_rows(child)
    into_parent, into_child = align_rows(first["id"].to_numpy(), second["id"].to_numpy())
    a, b = first.iloc[into_parent], second.iloc[into_child]
    differ = a["label"].to_numpy() != b["label"].to_numpy()
    if differ.any():
        raise DataError(
            f"the runs label {int(differ.sum())} of their {len(a)} shared test rows differently "
            f"(e.g. id {a['id'].to_numpy()[differ][0]})",
            hint="a diff needs the same rows with the same labels; was the parent's data changed?",
        )
    names = [str(n) for n in labels[0] or []]
    binary = len(names) == 2
    return Paired(
        ids=a["id"].to_numpy(),
        y_true=_codes(a["label"], names),
        parent=_predictions(a, names),
        child=_predictions(b, names),
        groups={
            column.removeprefix(GROUP_PREFIX): a[column].to_numpy()
            for column in a.columns
            if column.startswith(GROUP_PREFIX)
        },
        binary=binary,
    )


def compare_decisions(
    parent: dict[str, Any] | None, child: dict[str, Any] | None
) -> dict[str, Any]:
    """The two recorded gate decisions side by side, and the constraints whose status changed."""

    def summary(decision: dict[str, Any] | None) -> dict[str, Any] | None:
        if decision is None:
            return None
        return {
            "decision": decision.get("decision"),
            "policy": decision.get("policy"),
            "welfare": decision.get("welfare"),
            "ledger_entry": (decision.get("ledger") or {}).get("entry_hash"),
        }

    before = {c["label"]: c for c in (parent or {}).get("constraints") or []}
    after = {c["label"]: c for c in (child or {}).get("constraints") or []}
    changed = [
        {
            "constraint": label,
            "parent": {k: before[label].get(k) for k in ("status", "value", "detail")},
            "child": {k: after[label].get(k) for k in ("status", "value", "detail")},
        }
        for label in before
        if label in after and before[label].get("status") != after[label].get("status")
    ]
    welfare_before, welfare_after = ((d or {}).get("welfare") for d in (parent, child))
    return {
        "parent": summary(parent),
        "child": summary(child),
        "decision_changed": bool(parent and child and parent["decision"] != child["decision"]),
        "welfare_delta": None
        if welfare_before is None or welfare_after is None
        else float(welfare_after) - float(welfare_before),
        "constraints_changed": changed,
        "constraints_only_in_one": sorted(set(before) ^ set(after)),
    }


def _test_rows(run: RunDir) -> pd.DataFrame:
    if not run.predictions_path.is_file():
        raise DataError(
            f"{run.path} has no {run.predictions_path.name}", hint="is it a finished run?"
        )
    frame = run.predictions()
    return frame[frame["split"] == "test"].reset_index(drop=True)


def _codes(column: pd.Series, names: list[str]) -> np.ndarray:
    """Labels as their index in the run's label names: the positive class of a binary task is
    code 1 (the last name), which the paired metrics count as positive."""
    index = {name: code for code, name in enumerate(names)}
    unknown = sorted(set(column.astype(str)) - set(index))
    if unknown:
        raise DataError(f"predictions.parquet holds labels {unknown} outside the run's {names}")
    return column.astype(str).map(index).to_numpy(dtype=int)


def _predictions(frame: pd.DataFrame, names: list[str]) -> Predictions:
    """Decided labels as codes, and P(positive) (the ``prob_1`` column) for a binary task."""
    binary = len(names) == 2 and "prob_1" in frame
    scores = frame["prob_1"].to_numpy(dtype=float) if binary else None
    return Predictions(labels=_codes(frame["predicted_label"], names), scores=scores)


def _labels(predictions: Predictions) -> np.ndarray:
    assert predictions.labels is not None
    return predictions.labels


def _identity(run: RunDir) -> dict[str, Any]:
    identity = run.identity()
    return {**identity, "path": str(run.path)}
