"""`ethos audit`: run the checks, write ``audit.json`` and ``report.html`` atomically.

Two entry points: :func:`audit_run` for an ethos run directory (every check, the model at hand),
and :func:`audit_predictions` for any system's decisions in a CSV/Parquet file (fairness, and
calibration when scores are probabilities) — e.g. a vendor's risk scores.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ethos.audit.errors import AuditError
from ethos.audit.protocol import AuditContext, to_jsonable
from ethos.audit.registry import CHECKS, nest_sections
from ethos.audit.summary import summarise
from ethos.audit.validation import binary_outcomes
from ethos.rundir import RunDir, atomic_directory, atomic_write_text

AUDIT_JSON = "audit.json"
REPORT_HTML = "report.html"
INFORMATIVENESS = "informativeness"
"""Run by every audit, whatever checks were asked for: see :mod:`ethos.audit.informativeness`."""
NEEDS_GROUPS = ("fairness",)
"""Checks that compare groups: left out (and said so in meta) when the data has no sensitive
column, unless asked for by name."""
DP_AUDIT = "privacy.dp_audit"
"""The canary audit: "not applicable" for a run without canaries, unless asked for by name."""


@dataclass(frozen=True)
class AuditResult:
    """Where the audit was written, and what it found."""

    path: Path
    audit: dict[str, Any]

    @property
    def report(self) -> Path:
        return self.path / REPORT_HTML


def run_audit_checks(
    context: AuditContext, names: Sequence[str], options: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, Any], dict[str, float]]:
    """Each named check's section and its wall time in seconds."""
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise AuditError(
            f"unknown audit check(s) {', '.join(unknown)}", hint=f"known: {', '.join(CHECKS)}"
        )
    sections: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in names:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # checks carry their warnings inside their sections
            section = CHECKS[name](**(options or {}).get(name, {})).run(context)
        sections[name] = to_jsonable(section)
        seconds[name] = round(time.perf_counter() - started, 3)
    return sections, seconds


def write_audit(out: Path, audit: dict[str, Any], *, replace: bool) -> Path:
    from ethos.audit.report import render_report

    html = render_report(audit)
    if out.exists():
        if not replace:
            raise AuditError(f"{out} already exists", hint="pass --force to replace it")
        if not (out / AUDIT_JSON).is_file():
            raise AuditError(f"{out} exists and is not an audit folder; refusing to replace it")
    staging_parent = out.parent / f".{out.name}.new"
    import shutil

    shutil.rmtree(staging_parent, ignore_errors=True)
    with atomic_directory(staging_parent) as staging:
        (staging / AUDIT_JSON).write_text(json.dumps(audit, indent=2, allow_nan=False) + "\n")
        (staging / REPORT_HTML).write_text(html, encoding="utf-8")
    if out.exists():
        old = out.parent / f".{out.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging_parent.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging_parent.rename(out)
    return out


def refresh_report(run: RunDir) -> Path:
    """Draw the run's report page again from its audit.json and its diff.json (written after
    the audit, once the child is gated); audit.json, which decisions are bound to, is untouched.
    """
    from ethos.audit.report import render_report

    audit = run.audit()
    if audit is None:
        raise AuditError(f"{run.path} has no audit to draw", hint=f"run `ethos audit {run.path}`")
    path = run.audit_dir / REPORT_HTML
    atomic_write_text(path, render_report(audit, diff=run.diff()))
    return path


def audit_meta(**fields: Any) -> dict[str, Any]:
    versions = {}
    for package in ("ethos", "fairlearn", "captum", "presidio-analyzer", "scikit-learn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {"created_utc": datetime.now(UTC).isoformat(), "versions": versions, **fields}


def run_audit_meta(run: RunDir, **fields: Any) -> dict[str, Any]:
    """:func:`audit_meta` for an audit of ``run``: its identity (run, data and weights, as the
    manifest records them) and ``fields``."""
    manifest = run.manifest
    return audit_meta(
        kind="run",
        run_id=manifest["run_id"],
        run_dir=str(run.path),
        data=manifest["data"]["name"],
        data_fingerprint=manifest["data"]["fingerprint"],
        model=manifest["model"]["name"],
        weights_sha256=manifest["model"]["weights_sha256"],
        **fields,
    )


def audit_run(
    run: RunDir,
    *,
    out: Path | None = None,
    checks: Sequence[str] | None = None,
    part: str = "test",
    replace: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
) -> AuditResult:
    """Audit a finished classification run on its ``part`` rows (default: test); a
    multiple-choice run gets its accuracy and BBQ bias section (:mod:`ethos.audit.qa_bias`).

    The informativeness check runs even when ``checks`` leaves it out: the summary needs it to
    tell whether the other screens say anything about the model.
    """
    from ethos.audit.run_context import context_from_run

    if run.config.task == "multiple_choice":  # accuracy and BBQ bias: ethos.audit.qa_bias
        from ethos.audit.qa_bias import audit_choice_run

        result: AuditResult = audit_choice_run(
            run,
            out=out,
            checks=list(checks) if checks is not None else None,
            part=part,
            replace=replace,
        )
        return result
    if run.config.task == "causal_lm":  # the generation audits: ethos.audit.causal_run
        from ethos.audit.causal_run import audit_causal_run

        if part != "test":
            raise AuditError(f"a causal_lm run is audited on its test prompts, not {part!r}")
        found: AuditResult = audit_causal_run(
            run, out=out, checks=list(checks) if checks is not None else None, replace=replace
        )
        return found
    started = time.perf_counter()
    context = context_from_run(run, part=part)
    context_seconds = time.perf_counter() - started
    names = list(checks) if checks is not None else list(CHECKS)
    if INFORMATIVENESS not in names:  # cheap, and the summary needs it to read the other screens
        names.insert(0, INFORMATIVENESS)
    skipped: list[str] = []
    if checks is None and (context.groups is None or context.groups.shape[1] == 0):
        # No sensitive column (data.sensitive is empty, as for PubMedQA): nothing to compare.
        skipped = [n for n in names if n in NEEDS_GROUPS]
        names = [n for n in names if n not in NEEDS_GROUPS]
    # The run's own minimum group size (data.min_group_size) decides which groups are compared.
    chosen: dict[str, dict[str, Any]] = {
        "fairness": {"min_group_size": run.config.data.min_group_size}
    }
    if checks is not None and DP_AUDIT in names:  # asked for by name: no canaries is an error
        chosen[DP_AUDIT] = {"required": True}
    for name, given in (options or {}).items():
        chosen[name] = {**chosen.get(name, {}), **given}
    sections, seconds = run_audit_checks(context, names, chosen)
    if run.manifest.get("grounding"):  # a grounded run: retrieval, answers, abstention
        from ethos.audit.grounding import grounding_section

        started = time.perf_counter()
        sections["grounding"] = to_jsonable(grounding_section(run, context, seed=context.seed))
        seconds["grounding"] = round(time.perf_counter() - started, 3)
    audit: dict[str, Any] = nest_sections(sections)
    audit["meta"] = run_audit_meta(
        run,
        part=part,
        rows=len(context.texts or []),
        label_names=context.extras["label_names"],
        groups=list(context.groups.columns) if context.groups is not None else [],
        checks=names,
        **(
            {"skipped": {n: "the data has no sensitive column (data.sensitive)" for n in skipped}}
            if skipped
            else {}
        ),
        seconds={"load": round(context_seconds, 3), **seconds},
        seed=context.seed,
    )
    audit["summary"] = summarise(audit)
    target = out if out is not None else run.audit_dir
    return AuditResult(write_audit(target, audit, replace=replace), audit)


def _read_predictions(path: Path) -> pd.DataFrame:
    from ethos.datasets import BUNDLED

    if str(path) in BUNDLED and not path.exists():
        return BUNDLED[str(path)].load()
    if not path.is_file():
        raise AuditError(f"predictions file {path} does not exist", hint="check the path")
    from ethos.data.tables import infer_format, read_table
    from ethos.errors import DataError

    try:
        fmt = infer_format(path)
    except DataError:
        raise AuditError(
            f"cannot read {path}",
            hint="--predictions takes a .csv/.tsv, .jsonl or .parquet file (optionally .gz)",
        ) from None
    try:  # the data layer's reader: strict UTF-8, separator detection, errors that point
        frame = read_table(path, fmt=fmt)
    except DataError as exc:
        message = exc.message.replace(f"data file {path}", f"predictions file {path}")
        hint = "nothing to audit" if "has no rows" in message or "is empty" in message else None
        raise AuditError(message, hint=hint or exc.hint) from None
    return frame


def _column(frame: pd.DataFrame, name: str, path: Path, option: str) -> pd.Series:
    if name not in frame.columns:
        import difflib

        close = difflib.get_close_matches(name, [str(c) for c in frame.columns], n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        raise AuditError(
            f"{path} has no column '{name}' (given as {option})",
            hint=f"{guess}columns: {', '.join(map(str, frame.columns[:20]))}",
        )
    column = frame[name]
    if column.isna().any():
        rows = np.flatnonzero(column.isna().to_numpy())[:5].tolist()
        raise AuditError(f"column '{name}' of {path} is empty in rows {rows} (0-based)")
    return column


def audit_predictions(
    path: Path,
    *,
    label: str,
    groups: Sequence[str],
    prediction: str | None = None,
    score: str | None = None,
    threshold: float | None = None,
    positive: str | None = None,
    calibration: bool | None = None,
    out: Path | None = None,
    replace: bool = False,
    seed: int = 0,
) -> AuditResult:
    """Audit any system's decisions from a file: fairness, and calibration for probabilities.

    Decisions come from ``prediction`` (a column of predicted labels) or from ``score`` >=
    ``threshold``. Labels and predictions are compared as text, so 1, 1.0 and "1" match, as do
    "Yes" and "yes"; the favourable or selected outcome is ``positive`` (default: 1/true/yes if
    present), which names it in both columns, or ``LABEL=PREDICTION`` (``1=approved``) when the
    prediction column uses other words (see :func:`~ethos.audit.validation.binary_outcomes`).
    Calibration is measured when the scores are probabilities; ``calibration=True`` demands it
    (an error if the scores lie outside [0, 1]), ``False`` skips it.
    """
    if calibration and score is None:
        raise AuditError("calibration needs --score COL (probabilities), not only decisions")
    if (prediction is None) == (score is None):
        raise AuditError("give exactly one of --prediction COL or --score COL --threshold T")
    if score is not None and threshold is None:
        raise AuditError("--score needs --threshold (scores at or above it count as positive)")
    if not groups:
        raise AuditError("give at least one --group COL (a sensitive attribute to compare)")
    frame = _read_predictions(path)
    labels = _column(frame, label, path, "--label")
    group_frame = pd.DataFrame(
        {g: _column(frame, g, path, "--group").astype(str) for g in groups}
    ).reset_index(drop=True)
    for g in groups:
        if group_frame[g].nunique() < 2:
            raise AuditError(
                f"group column '{g}' has a single value ('{group_frame[g].iloc[0]}'), so no "
                "groups can be compared",
                hint="choose a column with at least two groups",
            )
    predicted = None if prediction is None else _column(frame, prediction, path, "--prediction")
    outcomes = binary_outcomes(
        labels, predicted, positive, label_name=label, prediction_name=prediction
    )
    y_true = outcomes.y_true
    y_prob = None
    if score is not None:
        scores = pd.to_numeric(_column(frame, score, path, "--score"), errors="coerce")
        if scores.isna().any():
            raise AuditError(f"score column '{score}' has non-numeric values")
        y_pred = (scores.to_numpy() >= float(threshold or 0.0)).astype(int)
        is_probability = bool(((scores >= 0) & (scores <= 1)).all())
        if calibration and not is_probability:
            raise AuditError(
                f"calibration was asked for, but scores in '{score}' lie outside [0, 1] "
                f"({scores.min()}..{scores.max()}), so they are not probabilities",
                hint="pass calibrated probabilities, or leave out --calibration",
            )
        if is_probability and calibration is not False:
            y_prob = scores.to_numpy(dtype=float)
        calibration_note = (
            None
            if y_prob is not None
            else "calibration was not requested"
            if calibration is False
            else f"scores in '{score}' lie outside [0, 1] (range {scores.min()}..{scores.max()}), "
            "so they are not probabilities and calibration is not measured"
        )
    else:
        assert outcomes.y_pred is not None
        y_pred = outcomes.y_pred
        calibration_note = "no scores given, so calibration is not measured"
    context = AuditContext(
        y_true=y_true,
        y_pred=y_pred,
        y_prob=y_prob,
        groups=group_frame,
        labels=[0, 1],
        pos_label=1,
        seed=seed,
    )
    names = [INFORMATIVENESS, "fairness"] + (["calibration"] if y_prob is not None else [])
    sections, seconds = run_audit_checks(context, names)
    audit: dict[str, Any] = dict(sections)
    audit["meta"] = audit_meta(
        kind="predictions",
        source=str(path),
        rows=len(frame),
        label=label,
        positive=outcomes.positive,
        prediction_positive=outcomes.prediction_positive,
        decision=f"{score} >= {threshold}" if score is not None else prediction,
        groups=list(groups),
        checks=names,
        notes=[n for n in [calibration_note] if n],
        seconds=seconds,
        seed=seed,
    )
    audit["summary"] = summarise(audit)
    target = out if out is not None else Path(path.name.split(".")[0] + ".audit")
    if out is None and path.exists():
        target = path.with_name(path.name.split(".")[0] + ".audit")
    return AuditResult(write_audit(target, audit, replace=replace), audit)
