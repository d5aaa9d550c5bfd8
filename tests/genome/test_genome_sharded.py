"""Genome-scale search: streamed FASTA windows and the sharded search, in process and on Ray.

The sharded search must return exactly what the single-process search returns (same hits, same
order) on genomes built to break it: sites planted at window boundaries on both strands, runs of
N, several chromosomes, one shorter than a site and one empty. Ray runs once per module (two
CPUs), started through ethos's own executor and shut down at the end.
"""

from __future__ import annotations

import gzip
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ethos.genome import (
    GenomeError,
    SequenceRecord,
    iter_windows,
    read_fasta,
    search_offtargets,
    search_offtargets_sharded,
    write_fasta,
)
from ethos.genome.alphabet import decode, reverse_complement
from ethos.genome.cli import app
from ethos.genome.executors import RayExecutor, open_executor
from ethos.genome.fasta_stream import check_window

GUIDES = ["GACGTTACGATCGGATCCAT", "TTGCAGCTAGGCATCGATCA"]
WINDOW_BP = 200  # sites of 23 bp: windows start every 200 - 22 = 178 bases
STEP_BP = WINDOW_BP - 22


def _plant(seq: list[str], at: int, site: str) -> None:
    seq[at : at + len(site)] = list(site)


def _mutate(guide: str, positions: list[int]) -> str:
    g = list(guide)
    for i in positions:
        g[i] = {"A": "C", "C": "G", "G": "T", "T": "A"}[g[i]]
    return "".join(g)


def _background(rng: np.random.Generator, length: int) -> list[str]:
    return list(decode(rng.integers(0, 4, length).astype(np.uint8)))


def genome_boundaries(tmp_path: Path) -> tuple[Path, str]:
    """Sites exactly at window edges (last start of a window, first of the next, straddling the
    overlap) on both strands; N runs beside and inside sites; a 10-bp and an empty record."""
    rng = np.random.default_rng(1)
    chr1 = _background(rng, 1200)
    g0, g1 = GUIDES
    _plant(chr1, STEP_BP - 1, g0 + "AGG")  # ends on window 0's last base
    _plant(chr1, STEP_BP + 40, reverse_complement(_mutate(g1, [2]) + "TGG"))
    _plant(chr1, 2 * STEP_BP, g1 + "CGG")  # first start of window 2
    _plant(chr1, 3 * STEP_BP - 10, reverse_complement(_mutate(g0, [0, 5]) + "GGG"))
    _plant(chr1, 4 * STEP_BP - 1, reverse_complement(g0 + "AGG"))
    chr3 = _background(rng, 900)
    _plant(chr3, 100, "N" * 30)
    _plant(chr3, 131, _mutate(g0, [19]) + "TGG")
    _plant(chr3, 300, g1[:10] + "N" + g1[11:] + "AGG")  # N inside a site: one mismatch
    _plant(chr3, 500, g1 + "NGG")  # N in the PAM: never a hit
    _plant(chr3, STEP_BP * 4 - 5, "N" * 40)
    records = [
        SequenceRecord.from_string("chr1", "".join(chr1)),
        SequenceRecord.from_string("short", "ACGTACGTAC"),
        SequenceRecord.from_string("empty", ""),
        SequenceRecord.from_string("chr3", "".join(chr3)),
    ]
    path = tmp_path / "boundaries.fa"
    write_fasta(records, path, width=61)
    return path, "NGG"


def genome_random(tmp_path: Path) -> tuple[Path, str]:
    """Three random records with mutated guide copies everywhere and 2 % N (relaxed NRG PAM)."""
    rng = np.random.default_rng(2)
    records = []
    for r, length in enumerate((3000, 23, 2500)):
        seq = _background(rng, length)
        for i in range(int(rng.integers(8, 14)) if length > 100 else 0):
            g = GUIDES[i % 2]
            site = _mutate(g, list(rng.choice(20, size=int(rng.integers(0, 4)), replace=False)))
            site += "ACGT"[int(rng.integers(4))] + "AG"[int(rng.integers(2))] + "G"
            if i % 3 == 0:
                site = reverse_complement(site)
            _plant(seq, int(rng.integers(0, length - 23)), site)
        for i in np.flatnonzero(rng.random(length) < 0.02):
            seq[i] = "N"
        records.append(SequenceRecord.from_string(f"chr{r + 1}", "".join(seq)))
    path = tmp_path / "random.fa"
    write_fasta(records, path, width=60)
    return path, "NRG"


def genome_gzip_lowercase(tmp_path: Path) -> tuple[Path, str]:
    """Gzipped, lower-case, 7-base lines, SaCas9 PAM (NNGRRT: 26-bp sites), planted copies."""
    rng = np.random.default_rng(3)
    seq = _background(rng, 2000)
    for k, at in enumerate(range(150, 1900, 173)):
        site = _mutate(GUIDES[k % 2], [k % 20]) + "ACGAGT"
        _plant(seq, at, reverse_complement(site) if k % 2 else site)
    records = [SequenceRecord.from_string("scaffold_1", "".join(seq))]
    plain = tmp_path / "plain.fa"
    write_fasta(records, plain, width=7)
    path = tmp_path / "lower.fa.gz"
    path.write_bytes(gzip.compress(plain.read_bytes().lower()))
    return path, "NNGRRT"


MakeGenome = Callable[[Path], tuple[Path, str]]
GENOMES: list[MakeGenome] = [genome_boundaries, genome_random, genome_gzip_lowercase]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """One local Ray with 2 CPUs for the module, started and stopped by ethos's executor."""
    pytest.importorskip("ray")
    with open_executor("local", workers=2):
        yield


# --- streamed windows ---------------------------------------------------------------------


@pytest.mark.parametrize("block_bytes", [1, 5, 64, 1 << 20])
@pytest.mark.parametrize("make", GENOMES)
def test_windows_rebuild_each_record_exactly(
    make: MakeGenome, block_bytes: int, tmp_path: Path
) -> None:
    path, _ = make(tmp_path)
    overlap = 22
    rebuilt: dict[str, list[str]] = {}
    for w in iter_windows(path, window_bp=50, overlap_bp=overlap, block_bytes=block_bytes):
        assert w.length_bp <= 50
        seq = rebuilt.setdefault(w.record, [])
        have = sum(map(len, seq))
        assert w.offset_bp == max(have - overlap, 0)
        seq.append(decode(w.codes)[have - w.offset_bp :])
    expected = {r.name: r.sequence for r in read_fasta(path)}
    assert list(rebuilt) == list(expected)  # every record, the empty one too, in file order
    assert {name: "".join(parts) for name, parts in rebuilt.items()} == expected


BAD_FILES = {
    "bad character": ">chr1\nACGT\n>chr2\nACGT\nACGTTTGGACCAXT\n",
    "ambiguity code": ">chr1\nACGTACGTACR\n",
    "text before header": "\n\nACGT\n>x\nAC\n",
    "duplicate name": ">x\nACGTACGTACGT\n>y\nAC\n>x\nGT\n",
    "header without name": ">x\nACGT\n> \nAC\n",
    "whitespace only": "\n  \n\t\n",
    "zero bytes": "",
}


@pytest.mark.parametrize("block_bytes", [1, 3, 1 << 20])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_streamed_errors_are_read_fasta_errors(case: str, block_bytes: int, tmp_path: Path) -> None:
    path = tmp_path / "bad.fa"
    path.write_text(BAD_FILES[case])
    with pytest.raises(GenomeError) as whole:
        read_fasta(path)
    with pytest.raises(GenomeError) as streamed:
        list(iter_windows(path, window_bp=30, overlap_bp=22, block_bytes=block_bytes))
    assert str(streamed.value) == str(whole.value)
    assert streamed.value.hint == whole.value.hint


def test_damaged_gzip_and_missing_file_are_read_fasta_errors(tmp_path: Path) -> None:
    damaged = tmp_path / "cut.fa.gz"
    bases = np.frombuffer(b"ACGT", np.uint8)[np.random.default_rng(5).integers(0, 4, 20_000)]
    damaged.write_bytes(gzip.compress(b">x\n" + bases.tobytes())[:2000])
    with pytest.raises(GenomeError, match="damaged gzip file"):
        read_fasta(damaged)
    for path, message in [(damaged, "damaged gzip file"), (tmp_path / "nope.fa", "not exist")]:
        with pytest.raises(GenomeError, match=message):
            list(iter_windows(path, window_bp=100, overlap_bp=22, block_bytes=64))


def test_window_must_be_longer_than_its_overlap() -> None:
    with pytest.raises(GenomeError, match="must be larger than the overlap"):
        check_window(22, 22)


def test_streaming_memory_is_bounded_by_block_and_window_not_genome(tmp_path: Path) -> None:
    """30 Mbp on disk, read with 1 MiB blocks and 1 Mbp windows: traced peak well under 30 MB."""
    path = tmp_path / "big.fa"
    letters = np.frombuffer(b"ACGT", np.uint8)[np.random.default_rng(4).integers(0, 4, 30_000_000)]
    with open(path, "wb") as fh:
        fh.write(b">big\n")
        fh.write(np.hstack([letters.reshape(-1, 100), np.full((300_000, 1), 10, np.uint8)]).data)
    del letters
    tracemalloc.start()
    total = 0
    try:
        for w in iter_windows(path, window_bp=1_000_000, overlap_bp=22, block_bytes=1 << 20):
            total += w.length_bp
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total >= 30_000_000
    assert peak_bytes < 12_000_000, peak_bytes


# --- sharded search equals the single-process search ---------------------------------------


@pytest.mark.parametrize("make", GENOMES)
def test_in_process_shards_equal_single_process_search(make: MakeGenome, tmp_path: Path) -> None:
    path, pam = make(tmp_path)
    expected = search_offtargets(path, GUIDES, pam=pam, max_mismatches=4)
    assert len(expected) >= 5  # the planted sites are found
    site_len = 20 + len(pam)
    for window_bp in (site_len, site_len + 1, WINDOW_BP, 1_000_000):
        got = search_offtargets_sharded(
            path, GUIDES, pam=pam, max_mismatches=4, window_bp=window_bp
        )
        assert got == expected, window_bp


def test_boundary_genome_finds_every_planted_site_once(tmp_path: Path) -> None:
    path, pam = genome_boundaries(tmp_path)
    hits = search_offtargets_sharded(path, GUIDES, pam=pam, max_mismatches=4, window_bp=WINDOW_BP)
    at = {(h.chromosome, h.position, h.strand, h.mismatches) for h in hits}
    assert len(at) == len(hits)
    assert {
        ("chr1", STEP_BP - 1, "+", 0),
        ("chr1", STEP_BP + 40, "-", 1),
        ("chr1", 2 * STEP_BP, "+", 0),
        ("chr1", 3 * STEP_BP - 10, "-", 2),
        ("chr1", 4 * STEP_BP - 1, "-", 0),
        ("chr3", 131, "+", 1),
        ("chr3", 300, "+", 1),
    } <= at
    assert not any(h.chromosome == "chr3" and h.position == 500 for h in hits)


@pytest.mark.parametrize("make", GENOMES)
def test_ray_shards_equal_single_process_search(
    make: MakeGenome, tmp_path: Path, ray_local: None
) -> None:
    path, pam = make(tmp_path)
    expected = search_offtargets(path, GUIDES, pam=pam, max_mismatches=4)
    got = search_offtargets_sharded(
        path, GUIDES, pam=pam, max_mismatches=4, window_bp=WINDOW_BP, ray_address="local"
    )
    assert got == expected


# --- bad input: clear errors, nothing half-done --------------------------------------------


def test_zero_byte_fasta_fails_before_any_shard_runs(tmp_path: Path, ray_local: None) -> None:
    good, _ = genome_boundaries(tmp_path)
    empty = tmp_path / "empty.fa"
    empty.write_bytes(b"")
    for address in (None, "local"):
        with pytest.raises(GenomeError, match=r"empty\.fa' is empty"):
            search_offtargets_sharded(empty, GUIDES, ray_address=address)
    assert search_offtargets_sharded(good, GUIDES, window_bp=WINDOW_BP)  # the good file is fine


def test_bad_record_mid_stream_is_the_read_fasta_error(tmp_path: Path, ray_local: None) -> None:
    path, _ = genome_random(tmp_path)
    bad = tmp_path / "bad.fa"
    bad.write_bytes(path.read_bytes() + b">chr9\nACGTACGTXACGT\n")
    with pytest.raises(GenomeError) as whole:
        read_fasta(bad)
    for address in (None, "local"):
        with pytest.raises(GenomeError) as sharded:
            search_offtargets_sharded(bad, GUIDES, window_bp=WINDOW_BP, ray_address=address)
        assert str(sharded.value) == str(whole.value)


def test_window_smaller_than_a_site_is_an_error(tmp_path: Path) -> None:
    path, _ = genome_boundaries(tmp_path)
    with pytest.raises(GenomeError, match=r"window_bp=22 is smaller than one site \(23 bp"):
        search_offtargets_sharded(path, GUIDES, window_bp=22)


def test_ray_address_that_does_not_answer_fails_fast(tmp_path: Path) -> None:
    path, _ = genome_boundaries(tmp_path)
    started = time.perf_counter()
    with pytest.raises(GenomeError, match=r"Ray cluster at '127\.0\.0\.1:1' does not answer"):
        search_offtargets_sharded(path, GUIDES, ray_address="127.0.0.1:1", connect_timeout_s=2)
    assert time.perf_counter() - started < 10
    with pytest.raises(GenomeError, match="is not host:port"):
        search_offtargets_sharded(path, GUIDES, ray_address="nowhere")


def test_missing_ray_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = genome_boundaries(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(GenomeError) as err:
        search_offtargets_sharded(path, GUIDES, ray_address="local")
    assert "needs the 'ray' package" in str(err.value)
    assert "ethos[scale]" in err.value.hint


def test_ray_task_error_is_reraised_as_itself(ray_local: None) -> None:
    import ray

    executor = RayExecutor(ray, max_in_flight=2)
    with pytest.raises(GenomeError, match="window_bp=3 must be larger than the overlap"):
        list(executor.map(partial(check_window, overlap_bp=5), [10, 20, 3, 30]))


# --- the command line ------------------------------------------------------------------------


def test_cli_shards_print_the_same_table_and_bad_input_writes_nothing(tmp_path: Path) -> None:
    path, _ = genome_boundaries(tmp_path)
    runner = CliRunner()
    base = ["offtargets", str(path), "-g", GUIDES[0], "-g", GUIDES[1]]
    plain = runner.invoke(app, base)
    sharded = runner.invoke(app, [*base, "--shards", "--window-bp", str(WINDOW_BP)])
    assert plain.exit_code == sharded.exit_code == 0, sharded.output
    assert sharded.output == plain.output
    bad = tmp_path / "bad.fa"
    bad.write_bytes(path.read_bytes() + b">x\nAC!GT\n")
    out = tmp_path / "hits.tsv"
    result = runner.invoke(
        app, ["offtargets", str(bad), "-g", GUIDES[0], "--shards", "--out", str(out)]
    )
    assert isinstance(result.exception, GenomeError)
    assert not out.exists() and not Path(f"{out}.tmp").exists()
    result = runner.invoke(app, [*base, "--ray", "127.0.0.1:1"])
    assert isinstance(result.exception, GenomeError)
    assert "does not answer" in str(result.exception)


def test_cli_help_explains_shards_and_ray() -> None:
    result = CliRunner().invoke(app, ["offtargets", "--help"])
    assert result.exit_code == 0
    for option in ("--shards", "--window-bp", "--ray", "--workers", "--convention"):
        assert option in result.output
    assert "ethos[scale]" in result.output
