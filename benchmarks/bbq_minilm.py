"""Benchmark: the bundled MiniLM fine-tuned on BBQ through `ethos train`, beside three baselines.

Issue 19, part 1: real numbers for a small encoder on BBQ (Parrish et al. 2022), measured on the
governed path a user runs (``task: multiple_choice``), then audited (``qa_bias``) and gated under
the bundled ``qa-bias`` policy.

Protocol (every random draw from ``--seed``):

1. **Data.** ``source: bbq``, the six bundled categories (11,956 questions), split by template by
   ``ethos.data.choices`` (test 0.2, validation 0.1), so no question template is in two parts.
   ``--train-rows`` keeps that many questions (``data.sample``, stratified by category and context
   condition, before the split); 0, the default, uses all.
2. **Model.** The bundled all-MiniLM-L6-v2 (``model.name: default``) with a fresh multiple-choice
   head; each option is ``[CLS] context [SEP] question option [SEP]``, the context cut first
   beyond ``--max-length``.
3. **Training.** ``ethos.training.train`` (the one loop): AdamW, lr ``--lr``, batch
   ``--batch-size`` questions, linear warm-up over 10% of the steps then linear decay,
   ``--epochs`` epochs, the best validation epoch kept.
4. **Question-only baseline.** The same run with ``choices.context_field: null``
   (``[CLS] question option [SEP]``), as the BBQ paper's question-only baseline. Skipped with
   ``--skip-question-only``.
5. **Scores.** Each run is audited (``ethos audit``: informativeness and ``qa_bias``) and gated
   under ``qa-bias``; the scores are :func:`ethos.stats.bbq_bias.bbq_bias_scores` on the run's
   stored test predictions, beside always-unknown and the majority option learnt on the run's
   train part, on the same test rows.

Also recorded: sizes, steps, training seconds, the gate's decision, and the load average and a
torch.mm GFLOP/s probe at start and end (the machine is shared).

Run from the repository root::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bbq_minilm.py --epochs 2

``--quick`` (a few dozen rows, one step) checks that the script runs end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from machine import gflops, load

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "bbq_minilm.json"
WARMUP_FRACTION = 0.1


def main() -> None:
    args = _parse()
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    probe_s = 0.5 if args.quick else 2.0
    machine_start = {"loadavg": load(), "gflops": gflops(probe_s)}
    print(f"start: load {machine_start['loadavg']}, {machine_start['gflops']} GFLOP/s", flush=True)

    from ethos.stats.bbq_bias import (
        always_unknown_scores,
        bbq_bias_scores,
        majority_option,
        majority_option_scores,
    )

    runs: dict[str, dict[str, Any]] = {}
    scores: dict[str, dict[str, Any]] = {}
    variants = [("minilm", True)] + ([] if args.skip_question_only else [("question_only", False)])
    test = train_labels = None
    with tempfile.TemporaryDirectory(prefix="bbq-") as work:
        for name, with_context in variants:
            run, test, train_labels = _governed_run(name, args, Path(work), with_context)
            runs[name] = run
            result = bbq_bias_scores(test)
            scores[name] = result.to_dict()
            print(result, flush=True)
    assert test is not None and train_labels is not None
    scores["always_unknown"] = always_unknown_scores(test).to_dict()
    reference = pd.DataFrame({"label": train_labels})
    scores["majority_option"] = majority_option_scores(test, reference=reference).to_dict()
    scores["majority_option"]["option"] = majority_option(reference["label"])

    machine_end = {"loadavg": load(), "gflops": gflops(probe_s)}
    result = {
        "benchmark": "bbq_minilm",
        "updated_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "path": "ethos.training.train (task: multiple_choice) -> ethos audit -> gate (qa-bias)",
        "model": "all-MiniLM-L6-v2 (bundled, model.name: default), AutoModelForMultipleChoice",
        "settings": {
            "seed": args.seed,
            "split": {
                "test_fraction": args.test_fraction,
                "validation_fraction": args.validation_fraction,
                "seed": args.seed,
                "by": "template (category, question_index)",
            },
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "weight_decay": 0.01,
            "warmup_fraction": WARMUP_FRACTION,
            "schedule": "linear warm-up then linear decay",
            "max_length": args.max_length,
            "max_steps": args.max_steps or None,
            "train_rows": args.train_rows or "all",
            "threads": torch.get_num_threads(),
        },
        "skipped": {}
        if not args.skip_question_only
        else {"question_only": "--skip-question-only was given"},
        "runs": runs,
        "scores": scores,
        "headline": _headline(scores),
        "markdown": _markdown(_headline(scores)),
        "machine": {
            "start": machine_start,
            "end": machine_end,
            "cpus_visible": os.cpu_count(),
            "gflops_probe_s": probe_s,
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "wall_s": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(result["markdown"])
    print(
        f"wrote {out} in {result['wall_s']} s; end load {machine_end['loadavg']}, "
        f"{machine_end['gflops']} GFLOP/s",
        flush=True,
    )


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument(
        "--train-rows", type=int, default=0, help="questions kept (data.sample; 0: all)"
    )
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--max-steps", type=int, default=0, help="0: all steps of the epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-question-only", action="store_true")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 150 questions, 1 step, 1 thread"
    )
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    if args.quick:
        args.train_rows, args.max_steps, args.batch_size, args.threads = 150, 1, 4, 1
    return args


def _governed_run(
    name: str, args: argparse.Namespace, work: Path, with_context: bool
) -> tuple[dict[str, Any], pd.DataFrame, pd.Series]:
    """Train, audit and gate one variant; its record, scored test rows and train labels."""
    from ethos.audit.runner import audit_run
    from ethos.config import RunConfig
    from ethos.governance.gate import gate_run
    from ethos.training import train

    data: dict[str, Any] = {
        "source": "bbq",
        "split": {
            "validation": args.validation_fraction,
            "test": args.test_fraction,
            "seed": args.seed,
        },
    }
    if args.train_rows:
        data["sample"] = args.train_rows
    config = RunConfig.model_validate(
        {
            "data": data,
            "task": "multiple_choice",
            "choices": {"context_field": "context" if with_context else None},
            "model": {"name": "default", "max_length": args.max_length},
            "train": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "learning_rate": args.lr,
                "weight_decay": 0.01,
                "warmup_ratio": WARMUP_FRACTION,
                **({"max_steps": args.max_steps} if args.max_steps else {}),
            },
            "policy": "qa-bias",
            "seed": args.seed,
            "output_dir": str(work / name),
        }
    )
    t0 = time.perf_counter()
    run = train(config, quiet=args.quick)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    audit = audit_run(run).audit
    decision = gate_run(run, "qa-bias").scorecard
    audit_s = time.perf_counter() - t0
    predictions = run.predictions()
    test = predictions[predictions["split"] == "test"].reset_index(drop=True)
    train_labels = pd.Series(run.dataset().part("train").labels, name="label")
    metrics = run.metrics
    manifest = run.manifest
    record = {
        "input": "[CLS] context [SEP] question option [SEP]"
        if with_context
        else "[CLS] question option [SEP] (context removed)",
        "steps": manifest["training"]["optimizer_steps"],
        "best_epoch": manifest["training"]["best_epoch"],
        "train_rows": manifest["data"]["split_counts"]["train"],
        "train_s": round(train_s, 1),
        "s_per_step": round(train_s / max(manifest["training"]["optimizer_steps"], 1), 3),
        "audit_and_gate_s": round(audit_s, 1),
        "accuracy": {part: metrics[part]["accuracy"] for part in ("validation", "test")},
        "history": metrics["history"],
        "gate": {
            "decision": decision.decision,
            "welfare": round(decision.welfare, 4),
            "broken": [c.label for c in decision.constraints if c.status == "broken"],
        },
        "summary": {k: v.get("status") for k, v in (audit.get("summary") or {}).items()},
    }
    print(f"[{name}] {record['accuracy']} {record['gate']}", flush=True)
    return record, test, train_labels


def _headline(scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Accuracy and bias per (category or overall) x (ambig, disambig) x model."""
    headline: dict[str, Any] = {}
    for model, result in scores.items():
        cells = {**result["by_category"], "overall": result["overall"]}
        for cell, both in cells.items():
            for condition in ("ambig", "disambig"):
                entry = headline.setdefault(cell, {}).setdefault(condition, {})
                entry[model] = {
                    "accuracy": _round(both[condition]["accuracy"]),
                    "bias": _round(both[condition]["bias"]),
                }
    return headline


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _markdown(headline: dict[str, Any]) -> str:
    """The headline as a Markdown table: accuracy / bias (x100) for each model."""
    models = list(next(iter(next(iter(headline.values())).values())))
    lines = [
        "| category | context | " + " | ".join(f"{m} acc / bias" for m in models) + " |",
        "|---|---|" + "---|" * len(models),
    ]
    for cell, conditions in headline.items():
        for condition, entry in conditions.items():
            values = [f"{_fmt(entry[m]['accuracy'])} / {_fmt(entry[m]['bias'], 1)}" for m in models]
            lines.append(f"| {cell} | {condition} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
