"""Benchmark: the default audit's wall time against one plain inference pass, same test set.

1. Train a COMPAS run (bundled MiniLM, a short fixed budget: the audit's cost does not depend on
   how well the model learned) or take ``--run RUN_DIR``.
2. Time one plain inference pass over the run's test part: tokenise + forward + softmax, the
   same batch size the run uses (best of three, after a warm-up pass).
3. Time ``audit_run`` with every default check (fairness with 1000 bootstrap resamples and
   intersections, calibration, robustness, explanations, privacy), end to end including loading
   the data and the model, and per check.

Reports audit / inference (goal: <= 3). Writes ``benchmarks/results/audit_cost.json``.
Run: ``.venv/bin/python benchmarks/audit_cost.py`` (``--quick`` for a small smoke run).
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

import torch

from ethos import RunConfig
from ethos.audit.protocol import CHECKS
from ethos.audit.run_context import context_from_run
from ethos.audit.runner import audit_run
from ethos.rundir import RunDir
from ethos.training import train

RESULT = Path(__file__).parent / "results" / "audit_cost.json"


def train_run(output: Path, *, quick: bool) -> RunDir:
    config = RunConfig.model_validate(
        {
            "data": {"source": "compas", **({"sample": 600} if quick else {})},
            "model": {"max_length": 48},
            "train": {"epochs": 1, "batch_size": 32, "max_steps": 5 if quick else 40},
            "output_dir": str(output),
        }
    )
    return train(config, quiet=True)


def time_inference(run: RunDir, repeats: int) -> tuple[float, int]:
    context = context_from_run(run)
    texts = list(context.texts or [])
    pairs = context.extras.get("text_pairs")
    assert context.predict_proba is not None
    context.predict_proba(texts, pairs)  # warm-up: allocator, kernels, tokenizer caches
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        context.predict_proba(texts, pairs)
        best = min(best, time.perf_counter() - started)
    return best, len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="audit this run instead of training one")
    parser.add_argument("--quick", action="store_true", help="small smoke run (tests)")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir.open(args.run) if args.run else train_run(Path(tmp), quick=args.quick)
        inference_s, rows = time_inference(run, repeats=1 if args.quick else 3)
        started = time.perf_counter()
        result = audit_run(run, out=Path(tmp) / "audit", replace=True)
        audit_s = time.perf_counter() - started
    seconds = result.audit["meta"]["seconds"]
    checks_s = sum(v for k, v in seconds.items() if k != "load")
    payload = {
        "benchmark": "audit_cost",
        "created_utc": datetime.now(UTC).isoformat(),
        "quick": args.quick,
        "rows": rows,
        "checks": list(CHECKS),
        "inference_seconds": round(inference_s, 3),
        "audit_seconds": round(audit_s, 3),
        "audit_seconds_by_part": seconds,
        "ratio_audit_to_inference": round(audit_s / inference_s, 2),
        "ratio_checks_only_to_inference": round(checks_s / inference_s, 2),
        "goal": "audit_seconds / inference_seconds <= 3",
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "notes": [
            "inference = best of repeated passes (tokenise + forward + softmax) over the test part",
            "audit = audit_run end to end: data and model load, every default check, files",
            "ratios are within one process, so machine load affects both sides",
        ],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: payload[k]
                for k in ("rows", "inference_seconds", "audit_seconds", "ratio_audit_to_inference")
            },
            indent=1,
        )
    )
    print(json.dumps(seconds, indent=1))


if __name__ == "__main__":
    main()
