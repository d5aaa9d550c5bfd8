"""Benchmark: genome-wide off-target search of 10 guides, <= 4 mismatches, NGG, both strands.

1. Generate a random 100 Mbp genome (4 chromosomes, 1 % N in runs, fixed seed) and write it to
   a temporary FASTA file (deleted afterwards; never committed).
2. Time reading it (:func:`ethos.genome.read_fasta`) and searching it with the vectorised
   :func:`ethos.genome.search_offtargets` (goal: <= 60 s wall on 2 cores).
3. On a smaller genome from the same generator, time the plain-Python reference
   :func:`ethos.genome.search_offtargets_reference` against the vectorised search, check they
   return identical hits, and report the speed-up (goal: >= 20x).
4. Genome scale: write a 1 Gbp random genome (12 chromosomes, one shorter than a site, 1 % N,
   100 guides planted exactly and as 1-4 mismatch copies) to a temporary FASTA piece by piece
   (never whole in memory; deleted afterwards) and search it for 100 guides with
   :func:`ethos.genome.search_offtargets_sharded` on a local Ray with 2 workers: wall time, hits,
   peak RSS of the driver and of each Ray worker (sampled with psutil). On a 20 Mbp genome from
   the same generator, check that the sharded search (Ray and in-process) returns exactly the
   hits of the single-process :func:`ethos.genome.search_offtargets`. Machine load
   (``os.getloadavg``) is recorded beside every figure.

Writes ``benchmarks/results/offtarget_search.json``. Run: ``.venv/bin/python
benchmarks/offtarget_search.py`` (``--genome-mbp`` / ``--small-kbp`` / ``--scale-gbp`` /
``--scale-guides`` to change sizes, ``--skip-scale`` to leave step 4 out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from machine import load

from ethos.genome import (
    SequenceRecord,
    read_fasta,
    search_offtargets,
    search_offtargets_reference,
    search_offtargets_sharded,
)
from ethos.genome.alphabet import LETTERS, PamPattern, decode, reverse_complement
from ethos.genome.executors import open_executor
from ethos.genome.offtarget_sharded import DEFAULT_WINDOW_BP
from ethos.genome.sites import pam_sites

RESULT = Path(__file__).parent / "results" / "offtarget_search.json"
N_GUIDES = 10
MAX_MISMATCHES = 4
PAM = "NGG"
LINE_BP = 60
SCALE_WORKERS = 2
#: Bases generated and written at a time by the streamed writer (a whole number of lines).
PIECE_BP = LINE_BP * 166_667
MB = 1024 * 1024


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


def _lines(letters: np.ndarray) -> bytes:
    """Letters as FASTA lines of LINE_BP bases (the last one may be shorter)."""
    full = letters.size // LINE_BP * LINE_BP
    body = np.hstack(
        [letters[:full].reshape(-1, LINE_BP), np.full((full // LINE_BP, 1), ord("\n"), np.uint8)]
    ).tobytes()
    return body + (letters[full:].tobytes() + b"\n" if letters.size > full else b"")


def scale_layout(total_bp: int) -> list[tuple[str, int]]:
    """Chromosome names and sizes: ten of decreasing size, a 16.5 kbp one and a 15 bp one."""
    weights = np.array([16, 14, 13, 12, 10, 9, 8, 7, 6, 5], dtype=float)
    sizes = np.floor(weights / weights.sum() * (total_bp - 16_584)).astype(int)
    layout = [(f"chr{i + 1}", int(size)) for i, size in enumerate(sizes)]
    return [*layout, ("chrM", 16_569), ("chrUn_tiny", 15)]


def scale_guides(n: int, seed: int) -> list[str]:
    """Random 20-nt guides (A, C, G, T)."""
    rng = np.random.default_rng(seed)
    return [decode(rng.integers(0, 4, 20).astype(np.uint8)) for _ in range(n)]


def scale_plants(
    layout: list[tuple[str, int]], guides: list[str], seed: int
) -> dict[int, list[tuple[int, str]]]:
    """Each guide planted exactly + NGG and as a 1-4 mismatch copy + AGG, half on the minus
    strand, inside one generated piece of a chromosome of at least 1 kbp."""
    rng = np.random.default_rng(seed)
    big = [i for i, (_, size) in enumerate(layout) if size >= 1_000]
    plants: dict[int, list[tuple[int, str]]] = {}
    for k, guide in enumerate(guides):
        near = list(guide)
        for j in rng.choice(20, size=1 + k % 4, replace=False):
            near[j] = "ACGT"[("ACGT".index(near[j]) + int(rng.integers(1, 4))) % 4]
        for site in (guide + "TGG", "".join(near) + "AGG"):
            if rng.random() < 0.5:
                site = reverse_complement(site)
            chrom = big[int(rng.integers(len(big)))]
            size = layout[chrom][1]
            piece = int(rng.integers(-(-size // PIECE_BP)))
            room = min(PIECE_BP, size - piece * PIECE_BP) - len(site)
            if room < 1:
                piece, room = 0, min(PIECE_BP, size) - len(site)
            plants.setdefault(chrom, []).append((piece * PIECE_BP + int(rng.integers(room)), site))
    return plants


def write_streamed_genome(
    path: Path, layout: list[tuple[str, int]], plants: dict[int, list[tuple[int, str]]], seed: int
) -> None:
    """Random bases with 1 % N in 1 kbp runs and planted sites, written PIECE_BP at a time, so
    the whole genome is never in memory."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as fh:
        for chrom, (name, size) in enumerate(layout):
            fh.write(f">{name}\n".encode())
            for start in range(0, size, PIECE_BP):
                codes = rng.integers(0, 4, min(PIECE_BP, size - start), dtype=np.uint8)
                for at in rng.integers(0, max(codes.size - 1000, 1), codes.size // 100_000):
                    codes[at : at + 1000] = 4
                for at, site in plants.get(chrom, []):
                    if start <= at < start + codes.size:
                        codes[at - start : at - start + len(site)] = ["ACGT".index(c) for c in site]
                fh.write(_lines(LETTERS[codes]))


class RssSampler:
    """Peak resident memory of this process and of its descendants (Ray's raylet starts the
    workers), sampled every ``interval_s`` in a background thread."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.driver_peak = 0
        self.ray_peaks: dict[int, tuple[str, int]] = {}
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        driver = me.memory_info().rss
        total = driver
        for child in me.children(recursive=True):
            try:
                rss = child.memory_info().rss
                cmd = " ".join(child.cmdline())
            except psutil.Error:
                continue
            total += rss
            label = "ray worker" if "default_worker" in cmd or cmd.startswith("ray::") else ""
            label = label or os.path.basename(cmd.split(" ")[0]) or "?"
            if cmd.startswith("ray::"):
                label = cmd.split(" ")[0]  # the task title Ray sets, e.g. ray::_apply
            peak = max(self.ray_peaks.get(child.pid, ("", 0))[1], rss)
            self.ray_peaks[child.pid] = (label, peak)
        self.driver_peak = max(self.driver_peak, driver)
        self.tree_peak = max(self.tree_peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        """Sample while the block runs."""
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self._sample()

    def summary(self) -> dict[str, Any]:
        """Peaks in MiB."""
        children = sorted(self.ray_peaks.values(), key=lambda item: -item[1])
        return {
            "driver_peak_rss_mb_during_search": round(self.driver_peak / MB, 1),
            "driver_peak_rss_mb_whole_benchmark_getrusage": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "child_process_peak_rss_mb": [
                {"process": label, "peak_rss_mb": round(rss / MB, 1)} for label, rss in children
            ],
            "ray_processes_and_driver_peak_rss_mb_total": round(self.tree_peak / MB, 1),
            "sampling_interval_s": self.interval_s,
        }


def genome_scale(args: argparse.Namespace) -> dict[str, Any]:
    """Step 4: the sharded search on a genome written piece by piece, on a local Ray."""
    guides = scale_guides(args.scale_guides, args.seed + 10)
    total_bp = int(args.scale_gbp * 1_000_000_000)
    layout = scale_layout(total_bp)
    small_layout = scale_layout(int(args.equality_mbp * 1_000_000))
    options = {"pam": PAM, "max_mismatches": MAX_MISMATCHES}
    result: dict[str, Any] = {
        "guides": len(guides),
        "workers": SCALE_WORKERS,
        "window_bp": DEFAULT_WINDOW_BP,
        "executor": "ray local",
        "load_at_start": load(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "equality.fa"
        write_streamed_genome(
            small, small_layout, scale_plants(small_layout, guides, args.seed + 11), args.seed + 12
        )
        t0 = time.perf_counter()
        with open_executor("local", workers=SCALE_WORKERS):
            result["ray_start_s"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            single = search_offtargets(small, guides, **options)
            t1 = time.perf_counter()
            on_ray = search_offtargets_sharded(small, guides, ray_address="local", **options)
            t2 = time.perf_counter()
            in_process = search_offtargets_sharded(small, guides, **options)
            t3 = time.perf_counter()
            result["equality"] = {
                "genome_bp": sum(size for _, size in small_layout),
                "chromosomes": len(small_layout),
                "hits": len(single),
                "sharded_ray_equals_single_process": on_ray == single,
                "sharded_in_process_equals_single_process": in_process == single,
                "single_process_s": round(t1 - t0, 2),
                "sharded_ray_s": round(t2 - t1, 2),
                "sharded_in_process_s": round(t3 - t2, 2),
                "load_after": load(),
            }
            print(f"equality: {json.dumps(result['equality'])}")
            fasta = Path(tmp) / "scale.fa"
            t0 = time.perf_counter()
            write_streamed_genome(
                fasta, layout, scale_plants(layout, guides, args.seed + 13), args.seed + 14
            )
            result["write_fasta_s"] = round(time.perf_counter() - t0, 1)
            result["fasta_bytes"] = fasta.stat().st_size
            result["load_before_search"] = load()
            sampler = RssSampler()
            with sampler.running():
                t0 = time.perf_counter()
                hits = search_offtargets_sharded(fasta, guides, ray_address="local", **options)
                wall_s = time.perf_counter() - t0
        result.update(
            {
                "genome_bp": sum(size for _, size in layout),
                "chromosomes": len(layout),
                "shards": sum(
                    max(1, -(-(size - 22) // (DEFAULT_WINDOW_BP - 22))) for _, size in layout
                ),
                "search_wall_s": round(wall_s, 1),
                "throughput_bp_guides_per_s": round(total_bp * len(guides) / wall_s),
                "hits": len(hits),
                "on_target_hits": sum(h.mismatches == 0 for h in hits),
                "memory": sampler.summary(),
                "load_after_search": load(),
                "note": "the driver streams the FASTA while the 2 workers search: 3 busy "
                "processes on 2 shared cores",
            }
        )
    print(f"genome scale: {json.dumps(result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--genome-mbp", type=float, default=100.0)
    parser.add_argument("--small-kbp", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--scale-gbp", type=float, default=1.0)
    parser.add_argument("--scale-guides", type=int, default=100)
    parser.add_argument("--equality-mbp", type=float, default=20.0)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    load_at_start = load()

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
    large["load"] = load()
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
    speed["load"] = load()
    print(f"speed-up: {json.dumps(speed)}")
    scale = None if args.skip_scale else genome_scale(args)
    result = {
        "benchmark": "offtarget_search",
        "guides": N_GUIDES,
        "max_mismatches": MAX_MISMATCHES,
        "pam": PAM,
        "seed": args.seed,
        "large_genome": large,
        "speedup_small_genome": speed,
        "genome_scale": scale,
        "machine": {
            "cpus_visible": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "note": "shared with other engineers while measured; timings are noisy",
            "load_at_start": load_at_start,
            "load_at_end": load(),
        },
        "command": "python benchmarks/offtarget_search.py "
        f"--genome-mbp {args.genome_mbp:g} --small-kbp {args.small_kbp:g} --seed {args.seed}"
        + (
            " --skip-scale"
            if args.skip_scale
            else f" --scale-gbp {args.scale_gbp:g} --scale-guides {args.scale_guides}"
            f" --equality-mbp {args.equality_mbp:g}"
        ),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
