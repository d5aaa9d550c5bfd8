"""The ``grounding`` audit section: does a grounded run find the evidence, answer from it, and
refuse what its knowledge base does not hold?

Measured on the audited part's questions (a question's gold passage is the knowledge-base
passage with its row id; questions whose gold passage is not in the knowledge base are counted
and left out of the retrieval metrics):

* ``retrieval``: recall@1/5/10 and MRR of the run's dense retrieval, each with a 95% percentile
  bootstrap interval over questions, beside ``bm25`` (:mod:`ethos.text.bm25`, over the same
  chunks, a passage ranked at its best chunk) on the same questions;
* ``answers``: the reader's accuracy reading the gold passage as the knowledge base holds it, the
  top retrieved passage, and (``trained_context``) the run's stored test predictions, made on the
  data's own passage column; so ``retrieved - gold`` is what retrieval costs and ``gold -
  trained_context`` what the knowledge base's copy (PII masking, chunk rebuilding) costs;
* ``abstention``: the calibrated threshold, the share of these (in-domain) questions answered and
  the accuracy of the answered ones, and on ``out_of_domain`` questions the share abstained;
* ``risk_coverage``: accuracy of the most confident share answered, ordered by retrieval score
  (what abstention uses) and by the reader's own top probability (:mod:`ethos.stats.abstention`);
* ``by_group``: retrieval per value of each sensitive column the questions carry, with the
  largest recall@1 gap among groups of at least ``min_group_size`` questions: a knowledge base
  that serves one group's questions worse shows here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ethos.audit.errors import AuditError
from ethos.audit.protocol import AuditContext
from ethos.rundir import RunDir

KS = (1, 5, 10)
RESAMPLES = 1000
OOD_EXAMPLES = 5


def grounding_section(run: RunDir, context: AuditContext, *, seed: int = 0) -> dict[str, Any]:
    """The section for ``run`` over the questions of ``context`` (the audited part)."""
    from ethos.errors import EthosError
    from ethos.models.grounded import GroundedAnswerer, grounding_record

    try:
        answerer = GroundedAnswerer.from_run(run)
    except EthosError as exc:
        raise AuditError(exc.message, hint=exc.hint) from None
    record = grounding_record(run)
    kb = answerer.kb
    questions = [str(t) for t in context.texts or []]
    ids = [str(i) for i in context.extras["ids"]]
    y_true = np.asarray(context.y_true)
    known = set(kb.passage_groups()[1])
    in_kb = np.array([i in known for i in ids], dtype=bool)
    depth = max(max(KS), answerer.top_k)
    found = answerer.retrieve(questions, depth)
    best = found.best_scores
    threshold = answerer.threshold
    answered = best >= threshold if threshold is not None else np.ones(len(best), dtype=bool)

    section: dict[str, Any] = {
        "knowledge_base": record["knowledge_base"],
        "top_k": answerer.top_k,
        "questions": len(questions),
        "questions_with_gold_in_kb": int(in_kb.sum()),
    }
    rng = np.random.default_rng(seed)
    gold_rows = np.flatnonzero(in_kb)
    if len(gold_rows):
        gold = [{ids[i]} for i in gold_rows]
        dense = [found.passage_ids[i] for i in gold_rows]
        lexical = _bm25_rankings(kb, [questions[i] for i in gold_rows], depth)
        section["retrieval"] = _retrieval_metrics(dense, gold, rng)
        section["bm25"] = _retrieval_metrics(lexical, gold, rng)
        section["retrieval"]["minus_bm25"] = {
            m: round(section["retrieval"][m]["value"] - section["bm25"][m]["value"], 6)
            for m in section["bm25"]
        }
    else:
        section["retrieval"] = {"reason": "no audited question has its gold passage in the KB"}

    read_retrieved = answerer.read(questions, [row[0] for row in found.passage_ids])
    retrieved_right = read_retrieved.argmax(axis=1) == y_true
    answers: dict[str, Any] = {
        "retrieved": _accuracy(retrieved_right),
        "trained_context": _accuracy(np.asarray(context.y_pred) == y_true),
    }
    if len(gold_rows):
        read_gold = answerer.read([questions[i] for i in gold_rows], [ids[i] for i in gold_rows])
        gold_right = read_gold.argmax(axis=1) == y_true[gold_rows]
        answers["gold"] = _accuracy(gold_right)
        answers["retrieved_on_gold_questions"] = _accuracy(retrieved_right[gold_rows])
        answers["retrieved_minus_gold"] = round(
            float(retrieved_right[gold_rows].mean() - gold_right.mean()), 6
        )
    section["answers"] = answers

    from ethos.stats.abstention import risk_coverage

    section["abstention"] = {
        **{k: v for k, v in record["abstention"].items() if k != "method"},
        "method": record["abstention"].get("method"),
        "answered": _accuracy(answered)["value"],
        "abstained": int((~answered).sum()),
        "answered_accuracy": _accuracy(retrieved_right[answered]),
        "out_of_domain": _out_of_domain(run, answerer),
    }
    section["risk_coverage"] = {
        "by_retrieval_score": risk_coverage(best, retrieved_right),
        "by_reader_confidence": risk_coverage(read_retrieved.max(axis=1), retrieved_right),
    }
    section["by_group"] = retrieval_by_group(
        context, found.passage_ids, ids, in_kb, answered, run.config.data.min_group_size
    )
    return section


def _accuracy(right: np.ndarray) -> dict[str, Any]:
    right = np.asarray(right, dtype=bool)
    if right.size == 0:
        return {"value": None, "n": 0}
    return {"value": round(float(right.mean()), 6), "n": int(right.size)}


def _retrieval_metrics(
    ranked: list[list[str]], gold: list[set[str]], rng: np.random.Generator
) -> dict[str, Any]:
    from ethos.stats.bootstrap import percentile_interval
    from ethos.stats.retrieval import recalls_at_k, reciprocal_ranks

    per_question = {f"recall@{k}": recalls_at_k(ranked, gold, k) for k in KS}
    per_question["mrr"] = reciprocal_ranks(ranked, gold)
    draws = rng.integers(0, len(gold), size=(RESAMPLES, len(gold)))
    out: dict[str, Any] = {}
    for name, values in per_question.items():
        low, high = percentile_interval(values[draws].mean(axis=1))
        out[name] = {
            "value": round(float(values.mean()), 6),
            "ci95": [round(low, 6), round(high, 6)],
        }
    return out


def _bm25_rankings(kb: Any, questions: list[str], depth: int) -> list[list[str]]:
    from ethos.stats.retrieval import best_per_group, top_k
    from ethos.text.bm25 import BM25

    starts, names = kb.passage_groups()
    scores = best_per_group(BM25([str(t) for t in kb.passages["text"]]).scores(questions), starts)
    _, order = top_k(scores, min(depth, len(names)))
    return [[names[i] for i in row] for row in order]


def out_of_domain_questions(source: str) -> list[str]:
    """Questions from ``squad-tiny`` (the bundled SQuAD excerpt), a SQuAD JSON file, or a table
    with a ``question`` column."""
    from ethos.data.squad import SQUAD_TINY_PATH, load_squad
    from ethos.data.tables import read_table
    from ethos.errors import DataError

    if source == "squad-tiny" or source.lower().endswith((".json", ".json.gz")):
        path = SQUAD_TINY_PATH if source == "squad-tiny" else Path(source)
        return list(load_squad(path, part="test").questions)
    try:
        table = read_table(Path(source))
    except DataError as exc:
        raise AuditError(
            f"grounding.out_of_domain: {exc.message}", hint="give squad-tiny or a table"
        ) from None
    if "question" not in table.columns:
        raise AuditError(
            f"grounding.out_of_domain {source} has no 'question' column",
            hint=f"its columns: {', '.join(map(str, table.columns[:20]))}",
        )
    questions = [str(q) for q in table["question"].dropna() if str(q).strip()]
    if not questions:
        raise AuditError(f"grounding.out_of_domain {source} has no questions")
    return questions


def _out_of_domain(run: RunDir, answerer: Any) -> dict[str, Any] | None:
    source = run.config.grounding.out_of_domain if run.config.grounding else None
    if source is None:
        return None
    questions = out_of_domain_questions(source)
    found = answerer.retrieve(questions, 1)
    best = found.best_scores
    threshold = answerer.threshold
    kept = best >= threshold if threshold is not None else np.ones(len(best), dtype=bool)
    examples = [
        {
            "question": questions[i],
            "score": round(float(best[i]), 6),
            "passage_id": found.passage_ids[i][0],
        }
        for i in np.argsort(-best)[:OOD_EXAMPLES]
        if kept[i]
    ]
    return {
        "source": source,
        "questions": len(questions),
        "abstained": round(float((~kept).mean()), 6),
        "answered": int(kept.sum()),
        "max_score": round(float(best.max()), 6),
        "median_score": round(float(np.median(best)), 6),
        "answered_examples": examples,
    }


def retrieval_by_group(
    context: AuditContext,
    ranked: list[list[str]],
    ids: list[str],
    in_kb: np.ndarray,
    answered: np.ndarray,
    min_group_size: int,
) -> dict[str, Any]:
    from ethos.stats.retrieval import recalls_at_k, reciprocal_ranks

    groups = context.groups
    if groups is None or groups.empty:
        return {"reason": "the questions carry no group (data.sensitive is empty)"}
    out: dict[str, Any] = {}
    for column in groups.columns:
        values = groups[column].astype(str).to_numpy()
        cells: dict[str, Any] = {}
        for value in sorted(set(values)):
            rows = np.flatnonzero((values == value) & in_kb)
            if len(rows) == 0:
                continue
            wanted = [{ids[i]} for i in rows]
            chosen = [ranked[i] for i in rows]
            cells[value] = {
                "n": len(rows),
                "recall@1": round(float(recalls_at_k(chosen, wanted, 1).mean()), 6),
                "recall@5": round(float(recalls_at_k(chosen, wanted, 5).mean()), 6),
                "mrr": round(float(reciprocal_ranks(chosen, wanted).mean()), 6),
                "answered": round(float(answered[rows].mean()), 6),
            }
        compared = [c["recall@1"] for c in cells.values() if c["n"] >= min_group_size]
        out[column] = {
            "groups": cells,
            "recall@1_gap": round(max(compared) - min(compared), 6) if len(compared) >= 2 else None,
        }
    return out


def render_section(section: dict[str, Any]) -> str:
    """The report's ``grounding`` section: retrieval beside BM25, answers, abstention, curve."""
    from ethos.html import table, tag

    kb = section.get("knowledge_base") or {}
    out = ["<h2 id='grounding'>Grounding: retrieval, answers and abstention</h2>"]
    out.append(
        tag(
            "p",
            f"{section.get('questions')} questions ({section.get('questions_with_gold_in_kb')} "
            f"with their gold passage in the knowledge base of {kb.get('passages')} passages, "
            f"{kb.get('chunks')} chunks, kb_sha256 {str(kb.get('kb_sha256'))[:12]}); "
            f"{section.get('top_k')} passages cited per answer.",
            class_="note",
        )
    )
    dense, lexical = section.get("retrieval") or {}, section.get("bm25") or {}
    if "recall@1" in dense:
        metrics = [f"recall@{k}" for k in KS] + ["mrr"]
        rows = [
            [name, *[(block.get(m) or {}).get("value") for m in metrics]]
            for name, block in (("dense (the run's encoder)", dense), ("BM25", lexical))
        ]
        out.append(table(["retrieval", *metrics], rows, columns=["text"] + [None] * 4))
    answers = section.get("answers") or {}
    rows = [
        [name, (answers.get(key) or {}).get("value"), (answers.get(key) or {}).get("n")]
        for name, key in (
            ("gold passage (knowledge base copy)", "gold"),
            ("top retrieved passage", "retrieved"),
            ("passage the data gave (stored predictions)", "trained_context"),
        )
        if key in answers
    ]
    out.append(table(["reader reads", "accuracy", "questions"], rows, columns=["text", None, None]))
    abstention = section.get("abstention") or {}
    ood = abstention.get("out_of_domain") or {}
    ood_text = (
        f" Out of domain ({ood.get('source')}, {ood.get('questions')} questions): "
        f"{ood.get('abstained')} abstained."
        if ood
        else ""
    )
    out.append(
        tag(
            "p",
            f"Abstains below retrieval score {abstention.get('threshold')} (calibrated for "
            f"{abstention.get('coverage_target')} coverage on "
            f"{abstention.get('calibration_questions')} validation questions): answered "
            f"{abstention.get('answered')} of these questions, "
            f"accuracy {(abstention.get('answered_accuracy') or {}).get('value')}.{ood_text}",
            class_="note",
        )
    )
    curve = (section.get("risk_coverage") or {}).get("by_retrieval_score") or {}
    rows = [
        [p["coverage"], p["answered"], p["accuracy"], p["min_confidence"]]
        for p in curve.get("points", [])
    ]
    if rows:
        out.append(tag("p", f"Risk-coverage by retrieval score (AURC {curve.get('aurc')}):"))
        out.append(table(["coverage", "answered", "accuracy", "lowest score answered"], rows))
    return "".join(out)
