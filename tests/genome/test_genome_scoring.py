"""CFD and MIT scores against published reference values, and their input errors."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ethos.genome
from ethos.genome import GenomeError, cfd_score, guide_specificity, mit_score
from ethos.genome.cfd_tables import cfd_mismatch_table, cfd_pam_table

DATA = Path(ethos.genome.__file__).parent / "data"
GUIDE20 = "ACGTACGTTGCATGCAACGT"


def _mutate(seq: str, position_1based: int) -> str:
    i = position_1based - 1
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}[seq[i]]
    return seq[:i] + other + seq[i + 1 :]


def test_cfd_doench_2016_shared_data_readme_example_rC_dC_position_6_is_0_5() -> None:
    assert cfd_score("ATGGTCGGACTCCCTGCCAGAGG", "ATGGTGGGACTCCCTGCCAGAGG") == pytest.approx(0.5)


def test_cfd_doench_2016_supplementary_table_19_rG_dG_position_3_is_0_3846() -> None:
    score = cfd_score("ATGTGGAGATTGCCACCTACCGG", "ATCTGGAGATTGCCACCTACAGG")
    assert score == pytest.approx(0.3846, abs=1e-4)


def test_mit_hsu_2013_single_mismatch_at_position_1_pam_distal_scores_100() -> None:
    assert mit_score(GUIDE20, _mutate(GUIDE20, 1)) == pytest.approx(100.0)


def test_mit_hsu_2013_single_mismatch_at_position_20_pam_proximal_scores_41_7() -> None:
    assert mit_score(GUIDE20, _mutate(GUIDE20, 20)) == pytest.approx(41.7, abs=0.1)


def test_mit_hsu_2013_two_mismatches_follow_the_published_formula() -> None:
    # positions 10 and 20 (1-based): weights 0.079 and 0.583, distance 10, n = 2
    expected = 100 * (1 - 0.079) * (1 - 0.583) / (((19 - 10) / 19) * 4 + 1) / 4
    assert mit_score(GUIDE20, _mutate(_mutate(GUIDE20, 10), 20)) == pytest.approx(expected)


def test_mit_perfect_match_is_100_and_n_is_an_upper_bound() -> None:
    assert mit_score(GUIDE20, GUIDE20) == 100.0
    assert mit_score(GUIDE20, GUIDE20[:19] + "N") == 100.0


def test_cfd_perfect_match_with_ngg_is_1_and_pam_table_applies() -> None:
    site = GUIDE20 + "TGG"
    assert cfd_score(site, site) == 1.0
    assert cfd_score(site, GUIDE20 + "TAG") == pytest.approx(0.259259259)
    assert cfd_score(site, GUIDE20 + "TTT") == 0.0


def test_cfd_n_in_offtarget_scores_as_the_most_active_base() -> None:
    site = GUIDE20 + "AGG"
    assert cfd_score(site, "N" + GUIDE20[1:] + "AGG") == 1.0
    assert cfd_score(site, GUIDE20 + "ANG") == 1.0


def test_vendored_cfd_tables_are_byte_identical_to_provenance_hashes() -> None:
    provenance = (DATA / "PROVENANCE.md").read_text()
    for name in ("cfd_mismatch.csv", "cfd_pam.csv"):
        digest = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
        assert digest in provenance, name
    assert len(cfd_mismatch_table()) == 240
    assert len(cfd_pam_table()) == 16
    assert cfd_pam_table()["GG"] == 1.0


@settings(max_examples=60, deadline=None)
@given(st.text("ACGT", min_size=20, max_size=20), st.text("ACGT", min_size=20, max_size=20))
def test_scores_stay_in_their_ranges(guide: str, off: str) -> None:
    assert 0.0 <= cfd_score(guide + "AGG", off + "CGG") <= 1.0
    assert 0.0 <= mit_score(guide, off) <= 100.0


def test_guide_specificity_is_100_over_100_plus_sum() -> None:
    assert guide_specificity([]) == 1.0
    assert guide_specificity([50.0, 50.0]) == 0.5
    with pytest.raises(GenomeError, match=r"outside 0\.\.100"):
        guide_specificity([150.0])
    with pytest.raises(GenomeError, match=r"outside 0\.\.100"):
        guide_specificity([math.nan])


def test_cfd_guide_of_wrong_length_says_expected_23() -> None:
    with pytest.raises(GenomeError, match=r"guide 'ACGT' has 4 bases; expected 23"):
        cfd_score("ACGT", GUIDE20 + "AGG")


def test_mit_guide_of_wrong_length_says_expected_20() -> None:
    with pytest.raises(GenomeError, match=r"has 23 bases; expected 20"):
        mit_score(GUIDE20 + "AGG", GUIDE20)


def test_score_character_outside_acgtn_is_named_with_position() -> None:
    with pytest.raises(GenomeError, match=r"character 'X' at position 3"):
        cfd_score(GUIDE20 + "AGG", "ACXTACGTTGCATGCAACGTAGG")
    with pytest.raises(GenomeError, match=r"character 'N' at position 1; allowed here: A, C, G, T"):
        mit_score("N" + GUIDE20[1:], GUIDE20)
