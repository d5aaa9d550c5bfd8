"""The vectorised off-target search against the plain-Python reference, and its contract."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ethos.genome import (
    GenomeError,
    SequenceRecord,
    hits_to_frame,
    search_offtargets,
    search_offtargets_reference,
    write_cas_offinder,
    write_fasta,
)
from ethos.genome.alphabet import decode, encode, reverse_complement

GUIDE = "GACGTTACGATCGGATCCAT"
PAMS = ["NGG", "NRG", "NNGRRT", "NAG"]
Search = Callable[..., Any]


def _random_case(
    seed: int, length: int, n_rate: float, pam: str
) -> tuple[list[SequenceRecord], list[str]]:
    """A random genome of 1-3 records with mutated copies of the guides planted on both strands."""
    rng = np.random.default_rng(seed)
    guides = ["".join(rng.choice(list("ACGT"), 20)) for _ in range(int(rng.integers(1, 3)))]
    records = []
    for r in range(int(rng.integers(1, 4))):
        codes = rng.integers(0, 4, length).astype(np.uint8)
        codes[rng.random(length) < n_rate] = 4
        seq = list(decode(codes))
        for _ in range(int(rng.integers(0, 6))):
            g = list(guides[int(rng.integers(len(guides)))])
            for i in rng.choice(20, size=int(rng.integers(0, 6)), replace=False):
                alphabet = "ACGTN" if n_rate else "ACGT"
                g[i] = alphabet[int(rng.integers(len(alphabet)))]
            pam_bases = "".join(
                "ACGT"[int(rng.integers(4))] if c == "N" else {"R": "AG"}.get(c, c)[0] for c in pam
            )
            site = "".join(g) + pam_bases
            if rng.random() < 0.5:
                site = reverse_complement(site)
            if length > len(site):
                at = int(rng.integers(0, length - len(site)))
                seq[at : at + len(site)] = list(site)
        records.append(SequenceRecord(name=f"chr{r}", codes=encode("".join(seq))))
    return records, guides


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(0, 900),
    n_rate=st.sampled_from([0.0, 0.02, 0.2]),
    pam=st.sampled_from(PAMS),
    max_mismatches=st.integers(0, 6),
    chunk_bp=st.integers(1, 1000),
)
def test_vectorised_search_equals_reference_on_random_genomes(
    seed: int, length: int, n_rate: float, pam: str, max_mismatches: int, chunk_bp: int
) -> None:
    records, guides = _random_case(seed, length, n_rate, pam)
    fast = search_offtargets(
        records, guides, pam=pam, max_mismatches=max_mismatches, chunk_bp=chunk_bp
    )
    slow = search_offtargets_reference(records, guides, pam=pam, max_mismatches=max_mismatches)
    assert fast == slow


def test_random_cases_exercise_mismatches_strands_and_n() -> None:
    """Guard for the property test above: its cases must contain varied hits, not only none."""
    seen = set()
    for seed in range(30):
        records, guides = _random_case(seed, 600, 0.02, "NGG")
        for h in search_offtargets_reference(records, guides, max_mismatches=6):
            seen.add((h.strand, h.mismatches, "n" in h.site))
    assert {s for s, _, _ in seen} == {"+", "-"}
    assert {m for _, m, _ in seen} >= {0, 1, 2, 3, 4}
    assert any(has_n for _, _, has_n in seen)


def test_planted_sites_on_both_strands_give_cas_offinder_rows() -> None:
    off = GUIDE[:5] + ("A" if GUIDE[5] != "A" else "C") + GUIDE[6:]
    genome = "AAAA" + GUIDE + "AGG" + "CCCCCCCC" + reverse_complement(off + "TGG") + "AAAA"
    hits = search_offtargets(
        [SequenceRecord.from_string("chrT", genome)], [GUIDE], max_mismatches=2
    )
    rows = [(h.chromosome, h.position, h.site, h.strand, h.mismatches) for h in hits]
    assert rows == [
        ("chrT", 4, GUIDE + "AGG", "+", 0),
        ("chrT", 35, off[:5] + off[5].lower() + off[6:] + "TGG", "-", 1),
    ]


def test_genome_n_never_matches_in_protospacer_or_pam() -> None:
    with_n = "N" + GUIDE[1:]
    genome = GUIDE + "NGG" + "TTTTT" + with_n + "AGG" + "TTTTT" + GUIDE + "ANG"
    hits = search_offtargets([SequenceRecord.from_string("c", genome)], [GUIDE], max_mismatches=1)
    assert [(h.position, h.site, h.mismatches) for h in hits] == [(28, "n" + GUIDE[1:] + "AGG", 1)]
    assert (
        search_offtargets([SequenceRecord.from_string("c", genome)], [GUIDE], max_mismatches=0)
        == []
    )


def test_fasta_path_input_and_cas_offinder_file(tmp_path: Path) -> None:
    fasta = tmp_path / "g.fa"
    write_fasta([SequenceRecord.from_string("chr1", "TT" + GUIDE + "CGG")], fasta)
    hits = search_offtargets(fasta, [GUIDE.lower()])
    out = tmp_path / "hits.tsv"
    write_cas_offinder(hits, out, pam_length=3)
    assert out.read_text() == f"{GUIDE}NNN\tchr1\t2\t{GUIDE}CGG\t+\t0\n"
    assert list(hits_to_frame(hits).columns) == [
        "guide", "chromosome", "position", "site", "strand", "mismatches"
    ]  # fmt: skip


IMPLEMENTATIONS = [search_offtargets, search_offtargets_reference]


@pytest.mark.parametrize("search", IMPLEMENTATIONS)
def test_guide_of_wrong_length_is_an_error_with_fix(search: Search) -> None:
    genome = [SequenceRecord.from_string("c", "ACGT" * 10)]
    with pytest.raises(GenomeError, match=r"guide '.*' has 23 bases; expected 20") as err:
        search(genome, [GUIDE + "AGG"])
    assert "without the PAM" in str(err.value)
    with pytest.raises(GenomeError, match="has 5 bases; expected 20"):
        search(genome, ["ACGTA"])


@pytest.mark.parametrize("search", IMPLEMENTATIONS)
def test_guide_with_character_outside_acgt_is_an_error(search: Search) -> None:
    genome = [SequenceRecord.from_string("c", "ACGT" * 10)]
    with pytest.raises(GenomeError, match=r"character 'N' at position 1; a guide may contain only"):
        search(genome, ["N" + GUIDE[1:]])
    with pytest.raises(GenomeError, match=r"character 'X' at position 20"):
        search(genome, [GUIDE[:19] + "X"])


@pytest.mark.parametrize("search", IMPLEMENTATIONS)
def test_bad_search_options_are_errors(search: Search) -> None:
    genome = [SequenceRecord.from_string("c", "ACGT" * 10)]
    with pytest.raises(GenomeError, match=r"max_mismatches=21 is outside 0\.\.20"):
        search(genome, [GUIDE], max_mismatches=21)
    with pytest.raises(GenomeError, match="no guides given"):
        search(genome, [])
    with pytest.raises(GenomeError, match=r"guide_length=33 is outside 1\.\.32"):
        search(genome, ["A" * 33], guide_length=33)
    with pytest.raises(GenomeError, match="unknown IUPAC code 'Q'"):
        search(genome, [GUIDE], pam="NQG")


@pytest.mark.parametrize("search", IMPLEMENTATIONS)
def test_empty_fasta_genome_is_an_error(search: Search, tmp_path: Path) -> None:
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(GenomeError, match=r"FASTA file '.*empty\.fa' is empty"):
        search(empty, [GUIDE])


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1000, 20_000),
    pam=st.sampled_from(PAMS),
    max_mismatches=st.integers(0, 5),
)
def test_vectorised_search_equals_reference_on_longer_genomes(
    seed: int, length: int, pam: str, max_mismatches: int
) -> None:
    records, guides = _random_case(seed, length, 0.01, pam)
    fast = search_offtargets(records, guides, pam=pam, max_mismatches=max_mismatches, chunk_bp=4096)
    assert fast == search_offtargets_reference(
        records, guides, pam=pam, max_mismatches=max_mismatches
    )
