"""Benchmark: continual learning under drift on real data (COMPAS, 2013 -> 2014), measured.

The question: when a governed COMPAS model trained on one year's cases is retrained with
``ethos.retrain`` on the next year's labelled cases, how much does it gain on the new year, how
much does it forget of the old one, and does replaying old rows change that trade?

Protocol:

1. **Data.** The vendored COMPAS table (``BUNDLED["compas"]``, 6172 rows after ProPublica's
   filter) is cut by ``compas_screening_date``: the 4345 rows screened in 2013 are the parent's
   data; the 2014 rows screened before ``--feedback-before`` are the feedback (default
   2014-04-01: the 952 rows of January-March 2014; ``2015-01-01``: all 1827 rows of 2014; see
   *the label artifact* below for why). Both are written as CSV files in the work dir with every
   column of the table (the parent's data schema), so the feedback's texts are built exactly as
   the parent's were. A work dir holds one scenario: reusing it with another
   ``--feedback-before`` is refused.
2. **Parent.** ``ethos.run_pipeline`` (train -> audit -> gate -> card -> ledger) with the bundled
   COMPAS data defaults (``source`` = the 2013 CSV; split 70/15/15, seed 13, group-aware) and the
   model, training and policy settings of ``src/ethos/examples/compas.yaml``: bundled
   all-MiniLM-L6-v2, ``max_length`` 48, 1 epoch, batch 32, lr 1e-4, weight decay 0.01,
   ``policy: criminal-justice``, seed 42.
3. **Children.** ``ethos.retrain(parent, feedback_csv, replay=r)`` for ``r`` in ``--replays``
   (default 0 and 0.5: feedback alone, and as many replayed 2013 training rows as 2014 training
   rows), ``holdout`` 0.2 (the default; 191 of the 952 feedback rows held out, 365 of 1827 with
   all of 2014, stratified by label and seeded by the parent's split seed, so every child holds
   out the same rows), the parent's
   epochs, learning rate and batch size (``--child-epochs`` / ``--max-steps`` change them), no
   L2 pull toward the parent. Every model is recorded in one ledger
   (``sqlite:///<workdir>/ledger.db``), the children linked to the parent.
4. **Evaluation rows, the same for every model.** *earlier*: the parent's test part (2013 rows;
   ``split == "test"`` in the parent's ``predictions.parquet``); *later*: the held-out 2014
   feedback rows (ids ``feedback:<id>`` in a child's test part; the children must agree on them).
   Children are scored from their own stored test predictions (both slices are in a child's test
   part). The parent is scored on *earlier* from its stored predictions and on *later* with
   ``RunModel.from_dir(parent).predict_proba`` on the 2014 table rows (``texts_from_frame``),
   decided with ``RunModel.decide`` (argmax: the config fits no thresholds). Two checks are
   recorded: the parent's re-scored probabilities on *earlier* equal its stored ones, and the
   texts it builds for *later* equal the texts the children were tested on.
5. **Metrics.** Accuracy, AUROC (P(label 1 = re-arrested within two years)) and the
   equalized-odds difference across ``race`` (fairlearn's definition, method "between_groups":
   ``max(TPR gap, FPR gap)``; :func:`ethos.stats.paired.equalized_odds_difference`). COMPAS's
   Asian and Native American groups have only a handful of rows in either slice, and one row can
   set a group's TPR or FPR to 0 or 1, so the EOD over all groups is reported beside the EOD over
   the groups with at least ``min_group_size`` (30, the run's own reliability floor) rows in the
   slice (``equalized_odds_difference(among=...)``). Also the predicted-positive rate (share of
   rows decided "re-arrested"): a child that learned a different base rate shows it there.
6. **Intervals.** 95% percentile bootstrap, ``--n-resamples`` (1000) resamples, seed
   ``--seed`` (0), resampling rows within each race group (group sizes fixed, so the EOD is
   defined in every resample where it is in the data). Everything uses
   :func:`ethos.stats.paired.paired_bootstrap`, whose index draws depend only on the seed, the
   rows and the groups, so all intervals of one slice come from the SAME 1000 resampled row sets:
   *forgetting* (child - parent on earlier) and *gain* (child - parent on later) are paired
   deltas (both models scored on each resample); a single model's interval is the same call
   against a null model whose metric is 0.

**The label artifact in the 2014 rows, and the two scenarios.** The bundled table is
ProPublica's two-year cut: a person is kept if re-arrested within two years or observed for two
years without one. ProPublica's data end in early 2016, so people screened from April 2014 on who
were *not* re-arrested could not be observed for two years and were dropped: 872 of the 875 rows
screened 2014-04-01 .. 2014-12-31 have ``two_year_recid == 1`` (the 3 others in April), so all of
2014 is 67% positive (1216 of 1827) against 37% in 2013, while January-March 2014 is 36% (344 of
952). Feedback from all of 2014 therefore mostly teaches a child this selection artifact (a shift
of the base rate), not a change in who re-offends; the first run of this benchmark showed exactly
that (children gained on the held-out 2014 rows by predicting "re-arrested" more often, and lost
on the ones screened before April). Hence:

- scenario ``clean`` (the default, ``--feedback-before 2014-04-01``): the feedback is the 952 rows
  of January-March 2014, whose labels are comparable with 2013's;
- scenario ``all_2014`` (``--feedback-before 2015-01-01``): all 1827 rows of 2014, the artifact
  reproduced; the held-out rows are then also reported restricted to those screened before
  2014-04-01 (slice ``later_before_artifact``: the same rows for every model, a subset of
  *later*).

Any other date is scenario ``feedback_before_<date>``. The results file keeps one entry per
scenario under ``scenarios`` (a run replaces only its own).

Also recorded: each model's gate decision (and broken constraints), the row counts (parent
train/validation/test, feedback train/test, replayed rows), wall seconds per model (the whole
governed pipeline, per stage as ``run_pipeline`` reports it), the load average and a torch.mm
GFLOP/s probe before and after (the machine is shared), and the ``ethos diff`` accuracy change
the pipeline itself computed for each child (a cross-check of *forgetting*: same point value;
its interval is not stratified by group, so it differs slightly).

Writes ``benchmarks/results/compas_drift.json`` and prints Markdown tables. Run:
``.venv/bin/python benchmarks/compas_drift.py [--workdir /tmp/compas-drift-clean]
[--feedback-before 2014-04-01]``; ``--reuse``
re-evaluates finished runs already in the work dir instead of training them again; ``--max-steps
N`` caps every model's optimizer steps (a smoke run; the results then say so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import gflops, load

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "compas_drift.json"
EXAMPLE = ROOT / "src" / "ethos" / "examples" / "compas.yaml"
DATE_COLUMN = "compas_screening_date"
EARLIER_YEAR, LATER_YEAR = "2013", "2014"
ATTRIBUTE = "race"
FEEDBACK_PREFIX = "feedback:"
ARTIFACT_FROM = "2014-04-01"
"""From here on (nearly) every row of the bundled table is a recidivist (module docstring)."""
ALL_OF_LATER_YEAR = "2015-01-01"


def scenario_name(feedback_before: str) -> str:
    """``clean`` (feedback before the artifact), ``all_2014``, or ``feedback_before_<date>``."""
    if feedback_before == ARTIFACT_FROM:
        return "clean"
    if feedback_before == ALL_OF_LATER_YEAR:
        return "all_2014"
    return f"feedback_before_{feedback_before}"


def iso_date(text: str) -> str:
    from datetime import date

    return date.fromisoformat(text).isoformat()


def stamp(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# ---- data and config ---------------------------------------------------------------------------


def write_data(work: Path, feedback_before: str) -> tuple[Path, Path, pd.DataFrame, int]:
    """The 2013 rows (parent data) and the 2014 rows screened before ``feedback_before``
    (feedback) as CSVs; the feedback table; how many 2014 rows were left out."""
    from ethos.datasets import BUNDLED

    table = BUNDLED["compas"].load()
    dates = table[DATE_COLUMN].astype(str)
    year = dates.str[:4]
    earlier, later = table[year == EARLIER_YEAR], table[year == LATER_YEAR]
    if len(earlier) + len(later) != len(table):
        raise SystemExit(f"{DATE_COLUMN} has years other than {EARLIER_YEAR}/{LATER_YEAR}")
    feedback = later[dates.loc[later.index] < feedback_before]
    if feedback.empty:
        raise SystemExit(f"no {LATER_YEAR} rows screened before {feedback_before}")
    parent_csv, feedback_csv = work / "compas_2013.csv", work / "compas_2014_feedback.csv"
    if feedback_csv.is_file():  # a work dir holds one scenario (its runs were trained on it)
        before = set(pd.read_csv(feedback_csv, usecols=["id"])["id"])
        if before != set(feedback["id"]):
            raise SystemExit(
                f"{feedback_csv} holds {len(before)} other feedback rows than --feedback-before "
                f"{feedback_before} selects ({len(feedback)}): use another --workdir"
            )
    earlier.to_csv(parent_csv, index=False)
    feedback.to_csv(feedback_csv, index=False)
    return parent_csv, feedback_csv, feedback.reset_index(drop=True), len(later) - len(feedback)


def parent_config(source: Path, output_dir: Path, max_steps: int | None) -> Any:
    """The bundled COMPAS defaults reading ``source``, with compas.yaml's model/train/policy."""
    import yaml

    from ethos.config import RunConfig
    from ethos.datasets import BUNDLED

    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    train = dict(example["train"])
    if max_steps is not None:
        train["max_steps"] = max_steps
    return RunConfig.model_validate(
        {
            "data": {**BUNDLED["compas"].defaults, "source": str(source)},
            "model": example["model"],
            "task": "classification",
            "train": train,
            "policy": example["policy"],
            "seed": example["seed"],
            "output_dir": str(output_dir),
        }
    )


# ---- training ------------------------------------------------------------------------------------


def governed(
    name: str, runs: Path, reuse: bool, timings: dict[str, Any], make: Callable[[], Any]
) -> Any:
    """Run ``make`` (a governed pipeline writing ``runs/name``) and time it, or reuse the run."""
    from ethos.rundir import RunDir

    path = runs / name
    if path.exists():
        if not reuse:
            raise SystemExit(f"{path} exists: pass a fresh --workdir, or --reuse to re-evaluate")
        stamp(f"{name}: reusing {path}")
        return RunDir.open(path)
    stamp(f"{name}: governed pipeline ...")
    load_before = load()
    t0 = time.perf_counter()
    result = make()
    timings[name] = {
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "stage_seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "loadavg_before": load_before,
        "loadavg_after": load(),
    }
    stamp(f"{name}: {result.decision} in {timings[name]['wall_seconds']} s -> {result.run.path}")
    return result.run


# ---- scoring -------------------------------------------------------------------------------------


def stored(run: Any) -> pd.DataFrame:
    """A run's test predictions, indexed by string id: true/decided label index, P(label 1)."""
    frame = run.predictions()
    frame = frame[frame["split"] == "test"].copy()
    frame["id"] = frame["id"].astype(str)
    names = [str(n) for n in run.manifest["data"]["label_names"]]
    out = pd.DataFrame(
        {
            "y": [_index(v, names) for v in frame["label"]],
            "decided": [_index(v, names) for v in frame["predicted_label"]],
            "p1": frame["prob_1"].to_numpy(float),
            "p0": frame["prob_0"].to_numpy(float),
            ATTRIBUTE: frame[f"group_{ATTRIBUTE}"].astype(str).to_numpy(),
        },
        index=frame["id"].to_numpy(),
    )
    if out.index.duplicated().any():
        raise SystemExit(f"{run.path}: repeated test ids")
    return out


def _index(value: Any, names: list[str]) -> int:
    text = str(value)
    if text in names:
        return names.index(text)
    return int(value)  # already an index


def parent_on_later(
    parent: Any, later_ids: list[str], table_2014: pd.DataFrame, child: Any
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The parent's outputs on the held-out 2014 rows, scored from the original table rows, and
    the checks that this is how the run itself scores (see the module docstring)."""
    from ethos.data.records import format_value
    from ethos.models.inference import RunModel

    model = RunModel.from_dir(parent)
    by_id = table_2014.assign(_key=[format_value(i) for i in table_2014["id"]]).set_index("_key")
    keys = [i.removeprefix(FEEDBACK_PREFIX) for i in later_ids]
    rows = by_id.loc[keys]
    texts, pairs = model.texts_from_frame(rows)
    probs = model.predict_proba(texts, pairs)
    decided = model.decide(probs).indices
    # Check 1: the texts are the ones the children were tested on. A child's table holds either
    # ready texts or the parent's record fields, which the child serialises as the parent did.
    child_rows = pd.read_parquet(child.child_data_path).astype({"id": str}).set_index("id")
    held_out = child_rows.loc[later_ids]
    if "text" in held_out.columns:
        child_texts = list(held_out["text"])
    else:
        child_texts = RunModel.from_dir(child).texts_from_frame(held_out)[0]
    texts_equal = int(sum(a == b for a, b in zip(texts, child_texts, strict=True)))
    # Check 2: re-scoring the parent's own test rows reproduces its stored probabilities.
    earlier = stored(parent)
    frame = parent.dataset().to_frame()
    frame = frame[frame["split"] == "test"].copy()
    frame["id"] = [format_value(i) for i in frame["id"]]
    frame = frame.set_index("id").loc[earlier.index]
    again = model.predict_proba(list(frame["text"]))
    checks = {
        "later_texts_equal_child_test_texts": f"{texts_equal}/{len(texts)}",
        "earlier_rescored_max_abs_prob_diff": float(np.abs(again[:, 1] - earlier["p1"]).max()),
        "earlier_rescored_decisions_equal": int(
            (model.decide(again).indices == earlier["decided"].to_numpy()).sum()
        ),
    }
    out = pd.DataFrame({"decided": decided, "p1": probs[:, 1], "p0": probs[:, 0]}, index=later_ids)
    return out, checks


# ---- statistics ----------------------------------------------------------------------------------


def metrics(min_group_size: int, codes: np.ndarray) -> dict[str, Any]:
    """The reported metrics, as ``(y, predictions, groups) -> float`` functions."""
    from ethos.stats.paired import accuracy, auroc, equalized_odds_difference

    reliable = np.flatnonzero(np.bincount(codes) >= min_group_size)

    def predicted_positive_rate(
        y: np.ndarray, predictions: Any, groups: np.ndarray | None
    ) -> float:
        return float(np.mean(np.asarray(predictions.labels) == 1))

    return {
        "accuracy": accuracy,
        "auroc": auroc,
        "eod_race": equalized_odds_difference(),
        "eod_race_reliable": equalized_odds_difference(among=[int(g) for g in reliable]),
        "predicted_positive_rate": predicted_positive_rate,
    }


def _against_null(metric: Callable[..., float]) -> Callable[..., float]:
    """``metric`` for a real model, 0 for the null model (labels None): ``paired_bootstrap`` of a
    model against the null model is then that model's own bootstrap on the same draws."""

    def wrapped(y: np.ndarray, predictions: Any, groups: np.ndarray | None) -> float:
        return 0.0 if predictions.labels is None else metric(y, predictions, groups)

    return wrapped


def evaluate_slice(
    y: np.ndarray,
    groups: np.ndarray,
    models: dict[str, pd.DataFrame],
    *,
    n_resamples: int,
    seed: int,
    min_group_size: int,
) -> dict[str, Any]:
    """Per-model values with intervals, and every child's paired delta against the parent."""
    from ethos.stats.paired import Predictions, paired_bootstrap

    names, codes = np.unique(groups, return_inverse=True)
    chosen = metrics(min_group_size, codes)
    preds = {
        m: Predictions(labels=f["decided"].to_numpy(), scores=f["p1"].to_numpy())
        for m, f in models.items()
    }
    null = Predictions(scores=np.zeros(len(y)))
    common: dict[str, Any] = {"groups": codes, "n_resamples": n_resamples, "seed": seed}
    wrapped = {k: _against_null(v) for k, v in chosen.items()}
    values: dict[str, Any] = {}
    for model, p in preds.items():
        found = paired_bootstrap(y, null, p, wrapped, **common)
        values[model] = {
            k: {"value": d.child, "ci95": [d.low, d.high], "n_undefined": d.n_undefined}
            for k, d in found.items()
        }
    deltas: dict[str, Any] = {}
    for model, p in preds.items():
        if model == "parent":
            continue
        found = paired_bootstrap(y, preds["parent"], p, chosen, **common)
        deltas[model] = {k: d.to_dict() for k, d in found.items()}
    sizes = np.bincount(codes)
    return {
        "rows": len(y),
        "positives": int(y.sum()),
        "race_group_rows": {str(n): int(s) for n, s in zip(names, sizes, strict=True)},
        "race_groups_in_reliable_eod": [
            str(n) for n, s in zip(names, sizes, strict=True) if s >= min_group_size
        ],
        "models": values,
        "child_minus_parent": deltas,
    }


# ---- report --------------------------------------------------------------------------------------


def fmt(entry: dict[str, Any], digits: int = 3) -> str:
    low, high = entry["ci95"]
    return f"{entry['value']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def fmt_delta(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "—"
    low, high = entry["ci95"]
    return f"{100 * entry['delta']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def table(payload: dict[str, Any], later_slice: str = "later") -> str:
    earlier, later = payload["evaluation"]["earlier"], payload["evaluation"][later_slice]
    counts = payload["rows"]
    what = (
        "held-out 2014 feedback rows"
        if later_slice == "later"
        else f"held-out 2014 feedback rows screened before {ARTIFACT_FROM}"
    )
    lines = [
        f"COMPAS drift, scenario `{payload['scenario']}`: {payload['protocol']['short']}. "
        "Earlier = the parent's 2013 test rows "
        f"(n={earlier['rows']}, {earlier['positive_share']:.0%} re-arrested); later = {what} "
        f"(n={later['rows']}, {later['positive_share']:.0%} re-arrested), the same rows "
        "for every model. Values with 95% bootstrap intervals "
        f"({payload['protocol']['n_resamples']} resamples, stratified by race). Forgetting = "
        "child − parent accuracy on earlier rows, gain = child − parent accuracy on later rows, "  # noqa: RUF001
        "in percentage points with paired-bootstrap 95% intervals. EOD = equalized-odds "
        "difference across race (fairlearn definition), over race groups with ≥ "
        f"{payload['protocol']['min_group_size']} rows in the slice "
        f"(earlier: {', '.join(earlier['race_groups_in_reliable_eod'])}; later: "
        f"{', '.join(later['race_groups_in_reliable_eod'])}); all-group EOD in the JSON.",
        "",
        "| model | training rows (2013 + 2014) | gate | acc earlier [95% CI] | acc later [95% CI] "
        "| AUROC earlier | AUROC later | EOD earlier | EOD later | forgetting (pp) | gain (pp) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model in payload["models"]:
        info = payload["models"][model]
        e, lt = earlier["models"][model], later["models"][model]
        de = earlier["child_minus_parent"].get(model, {}).get("accuracy")
        dl = later["child_minus_parent"].get(model, {}).get("accuracy")
        if model == "parent":
            rows = f"{counts['parent_train']} + 0"
        else:
            rows = f"{info['replayed_rows']} + {counts['feedback_train']}"
        lines.append(
            f"| {info['label']} | {rows} | {info['decision']} | {fmt(e['accuracy'])} | "
            f"{fmt(lt['accuracy'])} | {fmt(e['auroc'])} | {fmt(lt['auroc'])} | "
            f"{fmt(e['eod_race_reliable'])} | {fmt(lt['eod_race_reliable'])} | "
            f"{fmt_delta(de)} | {fmt_delta(dl)} |"
        )
    return "\n".join(lines)


def side_table(payload: dict[str, Any]) -> str:
    """Predicted-positive rates, wall seconds and load per model."""
    evaluation = payload["evaluation"]
    slices = [s for s in ("earlier", "later", "later_before_artifact") if s in evaluation]
    heads = {
        "earlier": "earlier",
        "later": "later",
        "later_before_artifact": f"later, screened before {ARTIFACT_FROM}",
    }
    shares = ", ".join(f"{heads[s]} {evaluation[s]['positive_share']:.0%}" for s in slices)
    lines = [
        f'Scenario `{payload["scenario"]}`: share of rows decided "re-arrested" [95% CI] (true '
        f"re-arrest share: {shares}); wall seconds of each governed pipeline (train + audit + "
        "gate (+ diff)), and the 1/5/15-min load average before -> after it "
        f"({payload['machine']['cpus']} CPUs, shared).",
        "",
        "| model | "
        + " | ".join(f"pred. positive {heads[s]}" for s in slices)
        + " | wall s (train / audit) | load before -> after |",
        "|---|" + "---|" * len(slices) + "---|---|",
    ]
    for model, info in payload["models"].items():
        rates = " | ".join(
            fmt(evaluation[s]["models"][model]["predicted_positive_rate"]) for s in slices
        )
        stages = info.get("stage_seconds") or {}
        wall = (
            f"{info['wall_seconds']} ({stages.get('train')} / {stages.get('audit')})"
            if info.get("wall_seconds") is not None
            else "not timed"
        )
        loads = (
            f"{info['loadavg_before']} -> {info['loadavg_after']}"
            if info.get("loadavg_before")
            else "—"
        )
        lines.append(f"| {info['label']} | {rates} | {wall} | {loads} |")
    return "\n".join(lines)


def write_results(out: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """Put ``payload`` under its scenario in ``out``, keeping the other scenarios there."""
    results: dict[str, Any] = {}
    if out.is_file():
        results = json.loads(out.read_text())
        if "scenarios" not in results:
            stamp(f"{out} is not in the per-scenario format: its contents are replaced")
            results = {}
    scenarios = {**results.get("scenarios", {}), payload["scenario"]: payload}
    order = ["clean", "all_2014"]
    scenarios = dict(
        sorted(
            scenarios.items(),
            key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
        )
    )
    results = {
        "benchmark": "compas_drift",
        "updated_utc": payload["created_utc"],
        "scenarios": scenarios,
        "markdown": "\n\n".join(s["markdown"] for s in scenarios.values()),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=_jsonable) + "\n")
    return results


# ---- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, help="default: a new folder under /tmp")
    parser.add_argument("--reuse", action="store_true", help="re-evaluate runs already trained")
    parser.add_argument(
        "--feedback-before",
        type=iso_date,
        default=ARTIFACT_FROM,
        metavar="DATE",
        help=f"feedback = {LATER_YEAR} rows screened before DATE (default {ARTIFACT_FROM}: "
        f"before the label artifact; {ALL_OF_LATER_YEAR}: all of {LATER_YEAR})",
    )
    parser.add_argument("--replays", default="0,0.5", help="comma-separated replay shares")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--child-epochs", type=float, help="default: the parent's (1)")
    parser.add_argument("--max-steps", type=int, help="cap every model's steps (smoke runs)")
    parser.add_argument("--n-resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    import ethos

    started = time.perf_counter()
    machine: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "loadavg_start": load(),
        "gflops_start": gflops(),
    }
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ethos-compas-drift-"))
    work = work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    runs = work / "runs"
    runs.mkdir(exist_ok=True)
    ledger = f"sqlite:///{work / 'ledger.db'}"
    stamp(f"work dir {work}, ledger {ledger}")
    scenario = scenario_name(args.feedback_before)
    stamp(
        f"scenario {scenario}: feedback = {LATER_YEAR} rows screened before {args.feedback_before}"
    )
    parent_csv, feedback_csv, table_2014, left_out = write_data(work, args.feedback_before)
    config = parent_config(parent_csv, runs, args.max_steps)
    replays = [float(r) for r in args.replays.split(",")]
    timings_path = work / "timings.json"
    timings: dict[str, Any] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}

    def log(line: str) -> None:
        stamp(f"  {line}")

    parent = governed(
        "parent",
        runs,
        args.reuse,
        timings,
        lambda: ethos.run_pipeline(
            config, ledger_url=ledger, quiet=True, log=log, run_name="parent"
        ),
    )
    timings_path.write_text(json.dumps(timings, indent=2))
    children: dict[str, Any] = {}
    for replay in replays:
        name = f"child-replay{round(100 * replay)}"
        children[name] = governed(
            name,
            runs,
            args.reuse,
            timings,
            partial(
                ethos.retrain,
                parent.path,
                str(feedback_csv),
                replay=replay,
                holdout=args.holdout,
                epochs=args.child_epochs,
                max_steps=args.max_steps,
                ledger_url=ledger,
                output_dir=runs,
                run_name=name,
                quiet=True,
                log=log,
            ),
        )
        timings_path.write_text(json.dumps(timings, indent=2))

    # ---- the rows every model is judged on
    stamp("scoring ...")
    parent_test = stored(parent)
    child_test = {name: stored(run) for name, run in children.items()}
    earlier_ids = list(parent_test.index)
    later_sets = {
        name: sorted(i for i in t.index if i.startswith(FEEDBACK_PREFIX))
        for name, t in child_test.items()
    }
    later_ids = next(iter(later_sets.values()))
    if any(ids != later_ids for ids in later_sets.values()):
        raise SystemExit("the children hold out different 2014 rows; cannot compare them")
    first_child = next(iter(children.values()))
    parent_later, checks = parent_on_later(parent, later_ids, table_2014, first_child)
    truth = child_test[next(iter(children))]
    y_later = truth.loc[later_ids, "y"].to_numpy()
    g_later = truth.loc[later_ids, ATTRIBUTE].to_numpy()
    for name, t in child_test.items():  # the children's copies of the parent's rows agree
        if not (t.loc[earlier_ids, "y"].to_numpy() == parent_test["y"].to_numpy()).all():
            raise SystemExit(f"{name} labels the parent's test rows differently")
    by_model_earlier = {
        "parent": parent_test,
        **{n: t.loc[earlier_ids] for n, t in child_test.items()},
    }
    by_model_later = {
        "parent": parent_later,
        **{n: t.loc[later_ids] for n, t in child_test.items()},
    }
    # The later rows screened before the label artifact (see the module docstring).
    from ethos.data.records import format_value

    dates = table_2014.assign(
        _key=[f"{FEEDBACK_PREFIX}{format_value(i)}" for i in table_2014["id"]]
    )
    screened = dates.set_index("_key").loc[later_ids, DATE_COLUMN].astype(str).to_numpy()
    before = screened < ARTIFACT_FROM
    q1_ids = [i for i, b in zip(later_ids, before, strict=True) if b]
    min_group_size = int(config.data.min_group_size)
    slices: list[tuple[str, np.ndarray, np.ndarray, dict[str, pd.DataFrame]]] = [
        (
            "earlier",
            parent_test["y"].to_numpy(),
            parent_test[ATTRIBUTE].to_numpy(),
            by_model_earlier,
        ),
        ("later", y_later, g_later, by_model_later),
    ]
    if not before.all():  # the feedback reaches into the artifact: also the rows before it
        slices.append(
            (
                "later_before_artifact",
                y_later[before],
                g_later[before],
                {m: f.loc[q1_ids] for m, f in by_model_later.items()},
            )
        )
    stamp("bootstrapping ...")
    evaluation = {
        slice_name: evaluate_slice(
            y,
            g,
            models,
            n_resamples=args.n_resamples,
            seed=args.seed,
            min_group_size=min_group_size,
        )
        for slice_name, y, g, models in slices
    }
    for slice_name in evaluation:
        evaluation[slice_name]["positive_share"] = round(
            evaluation[slice_name]["positives"] / evaluation[slice_name]["rows"], 4
        )

    # ---- identities, decisions, row counts
    def describe(run: Any, label: str) -> dict[str, Any]:
        decision = run.decision() or {}
        lineage = run.manifest.get("lineage") or {}
        info: dict[str, Any] = {
            "label": label,
            "run_dir": str(run.path),
            "run_id": run.manifest.get("run_id"),
            "decision": decision.get("decision"),
            "welfare": decision.get("welfare"),
            "constraints": {
                c.get("label"): {"status": c.get("status"), "value": c.get("value")}
                for c in decision.get("constraints", [])
                if isinstance(c, dict)
            },
            "reasons": decision.get("reasons"),
            "train_config": {
                k: run.config.train.model_dump(mode="json").get(k)
                for k in ("epochs", "max_steps", "batch_size", "learning_rate", "l2_to_start")
            },
            **timings.get(run.path.name, {"wall_seconds": None, "note": "reused, not timed"}),
        }
        if lineage:
            info["replay_share"] = lineage.get("replay_share")
            info["replayed_rows"] = lineage["rows"]["replayed_rows"]
            info["lineage_rows"] = lineage["rows"]
            diff = run.diff() or {}
            info["ethos_diff_accuracy"] = (diff.get("metrics") or {}).get("accuracy")
        return info

    models = {"parent": describe(parent, "parent (2013)")}
    for name, run in children.items():
        share = run.manifest["lineage"]["replay_share"]
        models[name] = describe(run, f"child, replay {share:g}")
    lineage_rows = next(iter(children.values())).manifest["lineage"]["rows"]
    parent_rows = len(pd.read_csv(parent_csv, usecols=["id"]))
    rows = {
        "table": parent_rows + len(table_2014) + left_out,
        "parent_rows_2013": parent_rows,
        "feedback_rows_2014": int(lineage_rows["feedback_rows"]),
        "rows_2014_left_out": left_out,
        "parent_train": int(lineage_rows["parent_train_rows"]),
        "parent_validation": int(lineage_rows["parent_validation_rows"]),
        "parent_test": int(lineage_rows["parent_test_rows"]),
        "feedback_train": int(lineage_rows["feedback_train_rows"]),
        "feedback_test": int(lineage_rows["feedback_test_rows"]),
        "replayed": {n: models[n]["replayed_rows"] for n in children},
    }
    machine["loadavg_end"] = load()
    machine["gflops_end"] = gflops()
    payload = {
        "benchmark": "compas_drift",
        "scenario": scenario,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "workdir": str(work),
        "protocol": {
            "short": "parent trained on 2013 cases, children retrained on 2014 feedback "
            f"screened before {args.feedback_before}",
            "data": f"bundled compas split by {DATE_COLUMN}: {EARLIER_YEAR} -> parent data, "
            f"{LATER_YEAR} rows screened before {args.feedback_before} -> feedback CSV "
            f"({left_out} later {LATER_YEAR} rows left out)",
            "feedback_before": args.feedback_before,
            "parent_config": config.model_dump(mode="json"),
            "replays": replays,
            "holdout": args.holdout,
            "child_epochs": args.child_epochs or "parent's",
            "max_steps": args.max_steps,
            "n_resamples": args.n_resamples,
            "bootstrap_seed": args.seed,
            "bootstrap": "percentile, stratified by race, ethos.stats.paired.paired_bootstrap; "
            "single-model intervals and paired deltas share the same resampled rows",
            "min_group_size": min_group_size,
            "decision_rule": "argmax (RunModel.decide; no thresholds in the config)",
        },
        "rows": rows,
        "models": models,
        "evaluation": evaluation,
        "checks": checks,
        "machine": machine,
        "total_wall_seconds": round(time.perf_counter() - started, 1),
        "models_wall_seconds_total": round(
            sum(t.get("wall_seconds") or 0 for t in timings.values()), 1
        ),
        "reused_runs": args.reuse,
        "note": "with --reuse, total_wall_seconds and machine cover this evaluation run only; "
        "each model's wall seconds and load are from the run that trained it (timings.json)",
    }
    parts = [table(payload)]
    if "later_before_artifact" in evaluation:
        parts.append(table(payload, "later_before_artifact"))
    parts.append(side_table(payload))
    markdown = "\n\n".join(parts)
    payload["markdown"] = markdown
    write_results(args.out, payload)
    print()
    print(markdown)
    print()
    print(json.dumps({"checks": checks, "rows": rows, "machine": machine}, indent=2))
    stamp(f"wrote scenario {scenario} to {args.out} ({payload['total_wall_seconds']} s)")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    main()
