"""PAM patterns and guide finding on both strands."""

from __future__ import annotations

import pytest

from ethos.genome import GenomeError, PamPattern, find_guides
from ethos.genome.alphabet import reverse_complement

PROTO = "GACGTTACGATCGGATCCAT"


def test_pam_pattern_with_unknown_iupac_code_is_an_error() -> None:
    with pytest.raises(GenomeError, match=r"PAM pattern 'NGX' has unknown IUPAC code 'X' at pos"):
        PamPattern.parse("NGX")
    with pytest.raises(GenomeError, match="PAM pattern is empty"):
        PamPattern.parse("")


def test_pam_pattern_matches_iupac_and_never_n() -> None:
    nrg = PamPattern.parse("nrg")
    assert nrg.pattern == "NRG"
    assert nrg.matches("TAG") and nrg.matches("CGG") and not nrg.matches("TCG")
    assert not nrg.matches("NGG")
    assert PamPattern.parse("NNGRRT").matches("ACGAGT")


def test_plus_and_minus_strand_guides_with_positions_and_cut_sites() -> None:
    site = PROTO + "TGG"
    target = "CC" + site + "AAAAA" + reverse_complement(site) + "TT"
    guides = [g for g in find_guides(target) if g.sequence == PROTO]
    assert [(g.strand, g.position, g.pam) for g in guides] == [("+", 2, "TGG"), ("-", 30, "TGG")]
    plus, minus = guides
    assert plus.cut_position == 2 + 17  # 3 bp 5' of the PAM
    assert minus.cut_position == 30 + 3 + 3
    assert plus.gc_fraction == pytest.approx(0.5)  # 5 G + 5 C of 20
    assert plus.site == site


def test_flags_poly_t_and_homopolymer() -> None:
    poly_t = find_guides("ACGTTTTACGTACGTACGTA" + "AGG")
    assert poly_t[0].poly_t and not poly_t[0].homopolymer
    homo = find_guides("ACGGGGGACGTACGTACGTA" + "AGG")
    assert homo[0].homopolymer and not homo[0].poly_t


def test_guides_overlapping_n_are_skipped_and_other_pams_work() -> None:
    assert find_guides("ACGTNACGTACGTACGTACG" + "AGG") == []
    sa = find_guides(PROTO + "ACGAGT", pam="NNGRRT")
    assert [(g.sequence, g.pam) for g in sa] == [(PROTO, "ACGAGT")]


def test_target_with_bad_character_is_an_error() -> None:
    with pytest.raises(GenomeError, match=r"character 'Z' at position 4"):
        find_guides("ACGZ")
