"""Benchmark: grounded PubMedQA through `ethos run`, as a user runs the bundled example.

Issue 21: retrieval, answers with retrieved vs gold abstracts, abstention and the risk-coverage
curve, measured by the ``grounding`` audit section of a real run of
``src/ethos/examples/pubmedqa_grounded.yaml``:

1. **Knowledge base.** Every bundled PubMedQA abstract (1,000: expert PQA-L and artificial PQA-A),
   PII masked, 96-word chunks overlapping by 24, embedded by the bundled all-MiniLM-L6-v2
   (``grounding.build_from: pubmedqa``; built on the first run, reused after).
2. **Reader.** MiniLM fine-tuned as the yes/no/maybe classifier on the expert set's training part
   (question + its own abstract, 256 tokens, 3 epochs), as ``examples/pubmedqa.yaml``.
3. **Calibration.** The abstention threshold is split conformal at 95% coverage over the
   validation questions' best-passage similarities (``ethos.stats.abstention``).
4. **Audit** on the expert set's test part (100 questions; each one's gold passage is its own
   abstract): recall@1/5/10 and MRR beside BM25 over the same chunks, the reader's accuracy
   reading the gold abstract (the knowledge base's masked copy), the top retrieved one, and the
   data's own passage (the run's stored predictions), abstention and the risk-coverage curve,
   and abstention on the 60 bundled SQuAD-excerpt questions (``out_of_domain: squad-tiny``).

Writes ``benchmarks/results/grounded_pubmedqa.json`` with the section, the gate's decision, stage
seconds, and the load average and a torch.mm GFLOP/s probe at start and end (a shared machine).

Run from the repository root (minutes: building the knowledge base, training, auditing)::

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python benchmarks/grounded_pubmedqa.py

``--from-run RUN_DIR`` summarises a finished run of the example instead of training one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import gflops, load

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "grounded_pubmedqa.json"
EXAMPLE = ROOT / "src" / "ethos" / "examples" / "pubmedqa_grounded.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from-run", type=Path, help="a finished run of the example")
    parser.add_argument("--workdir", type=Path, help="where kb/ and runs/ go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    started = {"load": load(), "gflops": gflops(), "utc": datetime.now(UTC).isoformat()}
    from ethos.rundir import RunDir

    seconds: dict[str, float] = {}
    decision = None
    if args.from_run is not None:
        run = RunDir.open(args.from_run)
    else:
        from ethos.config import load_config
        from ethos.pipeline import run_pipeline

        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="grounded-pubmedqa-"))
        os.chdir(workdir)
        os.environ.setdefault("ETHOS_LEDGER_URL", str(workdir / "ledger.db"))
        result = run_pipeline(load_config(EXAMPLE))
        run, decision, seconds = result.run, result.decision, result.seconds
    audit = run.audit()
    assert audit is not None, f"{run.path} has no audit"
    recorded = run.decision()
    document: dict[str, Any] = {
        "benchmark": "grounded_pubmedqa",
        "run": str(run.path),
        "config": str(EXAMPLE.relative_to(ROOT)),
        "manifest_grounding": run.manifest["grounding"],
        "train_wall_seconds": run.manifest.get("wall_seconds"),
        "metrics_test": run.metrics.get("test"),
        "baselines_test": (run.metrics.get("baselines") or {}),
        "grounding": audit["grounding"],
        "informativeness": audit.get("informativeness"),
        "decision": decision or (recorded or {}).get("decision"),
        "reasons": (recorded or {}).get("reasons"),
        "seconds": seconds,
        "audit_seconds": audit["meta"].get("seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "start": started,
            "end": {"load": load(), "gflops": gflops(), "utc": datetime.now(UTC).isoformat()},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
