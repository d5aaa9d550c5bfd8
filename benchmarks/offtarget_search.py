"""Benchmark: genome-wide off-target search of 10 guides, <= 4 mismatches, NGG, both strands.

1. Generate a random 100 Mbp genome (4 chromosomes, 1 % N in runs, fixed seed) and write it to
   a temporary FASTA file (deleted afterwards; never committed).
2. Time reading it (:func:`ethos.genome.read_fasta`) and searching it with the vectorised
   :func:`ethos.genome.search_offtargets` (goal: <= 60 s wall on 2 cores).
3. On a smaller genome from the same generator, time the plain-Python reference
   :func:`ethos.genome.search_offtargets_reference` against the vectorised search, check they
   return identical hits, and report the speed-up (goal: >= 20x).

Writes ``benchmarks/results/offtarget_search.json``. Run: ``.venv/bin/python
benchmarks/offtarget_search.py`` (``--genome-mbp`` / ``--small-kbp`` to change sizes).
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

import numpy as np

from ethos.genome import (
    SequenceRecord,
    read_fasta,
    search_offtargets,
    search_offtargets_reference,
)
from ethos.genome.alphabet import LETTERS, PamPattern, decode
from ethos.genome.sites import pam_sites

RESULT = Path(__file__).parent / "results" / "offtarget_search.json"
N_GUIDES = 10
MAX_MISMATCHES = 4
PAM = "NGG"
LINE_BP = 60


def random_genome(total_bp: int, n_chromosomes: int, seed: int) -> list[SequenceRecord]:
    """Uniform random bases with about 1 % N, placed as runs of 1 kbp (like assembly gaps)."""
    rng = np.random.default_rng(seed)
    records = []
    for i, size in enumerate(np.full(n_chromosomes, total_bp // n_chromosomes)):
        codes = rng.integers(0, 4, int(size), dtype=np.uint8)
        for start in rng.integers(0, max(int(size) - 1000, 1), int(size) // 100_000):
            codes[start : start + 1000] = 4
        records.append(SequenceRecord(name=f"chr{i + 1}", codes=codes))
    return records


def pick_guides(records: list[SequenceRecord], n: int, seed: int) -> list[str]:
    """Protospacers of random plus-strand NGG sites, so each guide has its on-target site."""
    rng = np.random.default_rng(seed)
    pam = PamPattern.parse(PAM)
    guides: list[str] = []
    while len(guides) < n:
        rec = records[int(rng.integers(len(records)))]
        start = int(rng.integers(0, max(rec.length_bp - 10_000, 1)))
        sites = pam_sites(rec.codes, pam, 20, "+", start=start, stop=start + 10_000)
        guide = decode(rec.codes[int(sites[0]) : int(sites[0]) + 20]) if sites.size else "N"
        if "N" not in guide:
            guides.append(guide)
    return guides


def plant_near_copies(record: SequenceRecord, guides: list[str], seed: int) -> SequenceRecord:
    """Insert each guide with 1-4 random mismatches + AGG, half on the minus strand."""
    rng = np.random.default_rng(seed)
    codes = record.codes.copy()
    for i, guide in enumerate(guides):
        site = np.array(["ACGT".index(c) for c in guide + "AGG"], dtype=np.uint8)
        for j in rng.choice(20, size=1 + i % 4, replace=False):
            site[j] = (site[j] + rng.integers(1, 4)) % 4
        if i % 2:
            site = (3 - site)[::-1]
        at = int(rng.integers(0, codes.size - site.size))
        codes[at : at + site.size] = site
    return SequenceRecord(name=record.name, codes=codes)


def write_fasta_fast(records: list[SequenceRecord], path: Path) -> None:
    """FASTA writer vectorised with numpy (the library's writer is line-by-line Python)."""
    with open(path, "wb") as fh:
        for rec in records:
            fh.write(f">{rec.name}\n".encode())
            letters = LETTERS[rec.codes]
            full = letters.size // LINE_BP * LINE_BP
            lines = np.hstack(
                [
                    letters[:full].reshape(-1, LINE_BP),
                    np.full((full // LINE_BP, 1), ord("\n"), np.uint8),
                ]
            )
            fh.write(lines.tobytes())
            if letters.size > full:
                fh.write(letters[full:].tobytes() + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--genome-mbp", type=float, default=100.0)
    parser.add_argument("--small-kbp", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()

    genome_bp = int(args.genome_mbp * 1_000_000)
    records = random_genome(genome_bp, 4, args.seed)
    guides = pick_guides(records, N_GUIDES, args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / "genome.fa"
        write_fasta_fast(records, fasta)
        del records
        t0 = time.perf_counter()
        loaded = read_fasta(fasta)
        t1 = time.perf_counter()
        hits = search_offtargets(loaded, guides, pam=PAM, max_mismatches=MAX_MISMATCHES)
        t2 = time.perf_counter()
    large = {
        "genome_bp": genome_bp,
        "chromosomes": len(loaded),
        "read_fasta_s": round(t1 - t0, 3),
        "search_s": round(t2 - t1, 3),
        "total_wall_s": round(t2 - t0, 3),
        "hits": len(hits),
        "on_target_hits": sum(h.mismatches == 0 for h in hits),
        "goal_total_wall_s": 60.0,
        "meets_goal": (t2 - t0) <= 60.0,
    }
    print(f"large genome: {json.dumps(large)}")
    del loaded

    small_bp = int(args.small_kbp * 1000)
    small = random_genome(small_bp, 1, args.seed + 2)
    small_guides = pick_guides(small, N_GUIDES, args.seed + 3)
    small = [plant_near_copies(small[0], small_guides, args.seed + 4)]
    t0 = time.perf_counter()
    reference = search_offtargets_reference(
        small, small_guides, pam=PAM, max_mismatches=MAX_MISMATCHES
    )
    reference_s = time.perf_counter() - t0
    vector_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        fast = search_offtargets(small, small_guides, pam=PAM, max_mismatches=MAX_MISMATCHES)
        vector_times.append(time.perf_counter() - t0)
    vector_s = min(vector_times)
    speed = {
        "genome_bp": small_bp,
        "reference_s": round(reference_s, 4),
        "vectorised_s_best_of_5": round(vector_s, 5),
        "speedup": round(reference_s / vector_s, 1),
        "identical_hits": fast == reference,
        "hits": len(fast),
        "goal_speedup": 20.0,
        "meets_goal": reference_s / vector_s >= 20.0 and fast == reference,
        "throughput_bp_per_s": {
            "reference": round(small_bp / reference_s),
            "vectorised_large_genome": round(genome_bp / large["search_s"]),
        },
    }
    print(f"speed-up: {json.dumps(speed)}")
    result = {
        "benchmark": "offtarget_search",
        "guides": N_GUIDES,
        "max_mismatches": MAX_MISMATCHES,
        "pam": PAM,
        "seed": args.seed,
        "large_genome": large,
        "speedup_small_genome": speed,
        "machine": {
            "cpus_visible": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "note": "shared with other engineers while measured; timings are noisy",
        },
        "command": "python benchmarks/offtarget_search.py "
        f"--genome-mbp {args.genome_mbp:g} --small-kbp {args.small_kbp:g} --seed {args.seed}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
