"""PII masking cost per record: Presidio's plain path (before) against ethos's lean path (after).

Issue 16: masking the prediction log (``ethos.serving.logwriter``) cost ~11 ms per record and
bounded serving throughput. Both paths find the same spans (``tests/text/test_pii_fast.py``;
checked again here on every workload):

- ``before``: :func:`ethos.text.pii.reference_find_pii`, what ``find_pii`` did until issue 16:
  the whole spaCy pipeline (tok2vec, tagger, attribute ruler, lemmatizer, NER; parser off) over
  the batch with ``nlp.pipe``, then ``AnalyzerEngine.analyze`` on each text with every recognizer
  of the entity list;
- ``after``: :func:`ethos.text.pii.find_pii`: the entity list's recognizers, NER alone over the
  batch, tagger and lemmatizer only for texts with a hit that context words could raise, and
  one- and two-digit runs never parsed as phone numbers.

Workloads (``tests/pii_texts.py``, fixed and seeded): ``records``, COMPAS rows serialised as
the served model reads them ("age: 34; juvenile felonies: 0; ..."), what ``ethos serve`` logs;
``personal``, free texts that each carry names, e-mails, phones, card or ID numbers. Each is cut
into batches of 1, 16 and 64 texts, masked batch by batch as the log writer does (default entity
list), and timed as milliseconds per record. Rounds interleave both paths and all batch sizes in
one process (warm engine), so the shared machine's load falls on both alike; the JSON keeps every
round, its load average, and the median.

Run: ``.venv/bin/python benchmarks/pii_masking.py`` -> ``benchmarks/results/pii_masking.json``
(``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ethos.text import pii  # noqa: E402
from pii_texts import compas_texts, free_texts, guardrail_texts  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "pii_masking.json"
BATCHES = (1, 16, 64)
PATHS: dict[str, Callable[..., list[list[pii.PiiSpan]]]] = {
    "before": pii.reference_find_pii,
    "after": pii.find_pii,
}
GOAL_MS = 2.0


def workloads(n: int) -> dict[str, list[str]]:
    return {
        "records": compas_texts(n, identifying=0),
        "personal": (guardrail_texts() + free_texts(n))[:n],
    }


def mask_in_batches(
    path: Callable[..., list[list[pii.PiiSpan]]], texts: Sequence[str], batch: int
) -> tuple[float, list[list[pii.PiiSpan]]]:
    """Seconds to find the spans of ``texts`` a batch at a time, and the spans."""
    found: list[list[pii.PiiSpan]] = []
    started = time.perf_counter()
    for at in range(0, len(texts), batch):
        found += path(texts[at : at + batch], batch_size=batch)
    return time.perf_counter() - started, found


def run(rounds: int, n: int) -> dict[str, object]:
    texts = workloads(n)
    for sample in texts.values():  # build the engine and the plan, warm caches
        for path in PATHS.values():
            path(sample[:16], batch_size=16)
    times: dict[str, dict[str, dict[int, list[float]]]] = {
        w: {p: {b: [] for b in BATCHES} for p in PATHS} for w in texts
    }
    identical = {w: True for w in texts}
    loads = []
    for r in range(rounds):
        loads.append([round(x, 2) for x in os.getloadavg()])
        for workload, sample in texts.items():
            for batch in BATCHES:
                order = list(PATHS) if r % 2 == 0 else list(reversed(PATHS))
                spans = {}
                for name in order:
                    seconds, spans[name] = mask_in_batches(PATHS[name], sample, batch)
                    times[workload][name][batch].append(1000 * seconds / len(sample))
                identical[workload] &= spans["before"] == spans["after"]
    report: dict[str, object] = {}
    for workload, sample in texts.items():
        medians = {
            name: {str(b): round(statistics.median(v), 3) for b, v in per_batch.items()}
            for name, per_batch in times[workload].items()
        }
        report[workload] = {
            "texts": len(sample),
            "texts_with_pii": sum(bool(s) for s in pii.find_pii(sample)),
            "identical_spans": identical[workload],
            "ms_per_record_median": medians,
            "speedup": {
                str(b): round(medians["before"][str(b)] / medians["after"][str(b)], 2)
                for b in BATCHES
            },
            "ms_per_record_rounds": {
                name: {str(b): [round(x, 3) for x in v] for b, v in per_batch.items()}
                for name, per_batch in times[workload].items()
            },
        }
    return {"workloads": report, "loadavg_per_round": loads}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--texts", type=int, default=192, help="texts per workload")
    parser.add_argument("--quick", action="store_true", help="1 round of 32 texts")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rounds, n = (1, 32) if args.quick else (args.rounds, args.texts)
    load_start = os.getloadavg()
    started = time.perf_counter()
    result = run(rounds, n)
    report = {
        "benchmark": "pii_masking",
        "created_utc": datetime.now(UTC).isoformat(),
        "quick": args.quick,
        "rounds": rounds,
        "batch_sizes": list(BATCHES),
        "entities": list(pii.DEFAULT_ENTITIES),
        "goal": f"after <= {GOAL_MS} ms/record at batch 16",
        **result,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "cpus_visible": len(os.sched_getaffinity(0)),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            **pii.versions(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for workload, numbers in result["workloads"].items():  # type: ignore[attr-defined]
        print(workload, json.dumps(numbers["ms_per_record_median"]), numbers["identical_spans"])


if __name__ == "__main__":
    main()
