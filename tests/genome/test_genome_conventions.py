"""Scoring conventions: CRISPOR's (N a mismatch, MIT x 0.2 off a GG PAM) and ethos's (N an upper
bound), each against values computed by hand from the formulas.

CRISPOR's rules, read in crispor.py (github.com/maximilianh/crisporWebsite, commit 49b5f1e): in
the off-target loop the MIT score of an off-target of an NGG guide whose last two bases are not
GG is multiplied by 0.2; calcHitScore counts any differing character (N included) as a
mismatch; calcCfdScore returns -1 for a sequence with a character outside ACGT, and such sites
are left out of the CFD list the guide's specificity is summed from.
"""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from ethos.genome import GenomeError, OffTargetHit, cfd_score, mit_score
from ethos.genome.cli import app
from ethos.genome.offtarget import format_site
from ethos.genome.ranking import guide_report, score_hit
from ethos.genome.scoring import default_convention, mit_pam_factor

GUIDE20 = "ACGTACGTTGCATGCAACGT"
W10, W20 = 0.079, 0.583  # Hsu et al. 2013 weights at positions 10 and 20 (1-based)
CFD_PAM_AG = 0.259259259  # Doench et al. 2016 PAM table, "AG"


def _with(seq: str, position_1based: int, base: str) -> str:
    i = position_1based - 1
    return seq[:i] + base + seq[i + 1 :]


def _hit(site: str, position: int = 0) -> OffTargetHit:
    return OffTargetHit(
        guide=GUIDE20,
        chromosome="chr1",
        position=position,
        site=format_site(site, GUIDE20),
        strand="+",
        mismatches=sum(s != g or s == "N" for s, g in zip(site, GUIDE20, strict=False)),
    )


def test_default_convention_is_crispor_for_relaxed_pams_and_ethos_for_ngg() -> None:
    assert default_convention("NGG") == "ethos"
    assert default_convention("ngg") == "ethos"
    assert default_convention("NRG") == "crispor"
    assert default_convention("NNGRRT") == "crispor"


def test_crispor_n_in_offtarget_is_a_mismatch_for_mit() -> None:
    off = _with(GUIDE20, 20, "N")
    assert mit_score(GUIDE20, off, convention="ethos") == 100.0
    assert mit_score(GUIDE20, off, convention="crispor") == pytest.approx(100 * (1 - W20))


def test_crispor_n_and_a_real_mismatch_follow_the_two_mismatch_formula() -> None:
    off = _with(_with(GUIDE20, 10, "N"), 20, "A" if GUIDE20[19] != "A" else "C")
    two = 100 * (1 - W10) * (1 - W20) / (((19 - 10) / 19) * 4 + 1) / 2**2
    assert mit_score(GUIDE20, off, convention="crispor") == pytest.approx(two)
    assert mit_score(GUIDE20, off, convention="ethos") == pytest.approx(100 * (1 - W20))


def test_crispor_does_not_cfd_score_a_site_with_n() -> None:
    guide = GUIDE20 + "AGG"
    assert cfd_score(guide, "N" + GUIDE20[1:] + "AGG", convention="ethos") == 1.0
    assert math.isnan(cfd_score(guide, "N" + GUIDE20[1:] + "AGG", convention="crispor"))
    assert cfd_score(guide, GUIDE20 + "TAG", convention="crispor") == pytest.approx(CFD_PAM_AG)


def test_crispor_mit_times_0_2_off_a_gg_pam_only_for_3_nt_pams() -> None:
    assert mit_pam_factor("TAG", convention="crispor") == 0.2
    assert mit_pam_factor("TGA", convention="crispor") == 0.2
    assert mit_pam_factor("CGG", convention="crispor") == 1.0
    assert mit_pam_factor("TAG", convention="ethos") == 1.0
    assert mit_pam_factor("ACGAGT", convention="crispor") == 1.0  # SaCas9: no such rule


def test_score_hit_of_a_perfect_nag_site_under_each_convention() -> None:
    hit = _hit(GUIDE20 + "TAG")
    assert score_hit(hit, "NRG") == pytest.approx((CFD_PAM_AG, 20.0))  # default: crispor
    assert score_hit(hit, "NRG", convention="crispor") == pytest.approx((CFD_PAM_AG, 20.0))
    assert score_hit(hit, "NRG", convention="ethos") == pytest.approx((CFD_PAM_AG, 100.0))


def test_guide_specificity_under_each_convention_by_hand() -> None:
    """Two off-targets: a perfect NAG site, and a GG site with N at position 20."""
    hits = [_hit(GUIDE20 + "TAG", 10), _hit(_with(GUIDE20, 20, "N") + "TGG", 50)]
    crispor = guide_report(GUIDE20, hits, pam="NRG", max_mismatches=4, on_index=None)
    assert crispor.convention == "crispor"
    # MIT: 100 * 0.2 = 20 for the NAG site, 100 * (1 - 0.583) = 41.7 for the N site
    assert crispor.specificity_mit == pytest.approx(100 / (100 + 20 + 100 * (1 - W20)))
    # CFD: the N site is not scored and stays out of the sum
    assert crispor.specificity_cfd == pytest.approx(100 / (100 + 100 * CFD_PAM_AG))
    assert crispor.as_dict()["convention"] == "crispor"
    ethos = guide_report(
        GUIDE20, hits, pam="NRG", max_mismatches=4, on_index=None, convention="ethos"
    )
    assert ethos.specificity_mit == pytest.approx(100 / (100 + 100 + 100))
    assert ethos.specificity_cfd == pytest.approx(100 / (100 + 100 * CFD_PAM_AG + 100))


def test_ngg_reports_keep_the_ethos_upper_bound_by_default() -> None:
    report = guide_report(
        GUIDE20, [_hit(_with(GUIDE20, 20, "N") + "TGG")], pam="NGG", max_mismatches=4, on_index=None
    )
    assert report.convention == "ethos"
    assert report.specificity_mit == pytest.approx(0.5)  # the N site scores 100


def test_unknown_convention_is_an_error_with_both_choices() -> None:
    with pytest.raises(GenomeError, match="'crispr' is not one of crispor, ethos"):
        mit_score(GUIDE20, GUIDE20, convention="crispr")  # type: ignore[arg-type]
    with pytest.raises(GenomeError, match="is not one of"):
        score_hit(_hit(GUIDE20 + "TGG"), "NGG", convention="CRISPOR")


def test_cli_score_takes_the_convention() -> None:
    runner = CliRunner()
    ethos = runner.invoke(app, ["score", GUIDE20 + "TGG", GUIDE20 + "TAG"])
    crispor = runner.invoke(
        app, ["score", GUIDE20 + "TGG", GUIDE20 + "TAG", "--convention", "crispor"]
    )
    assert ethos.exit_code == crispor.exit_code == 0, crispor.output
    assert ethos.output.splitlines()[-2].split("│")[-2].strip() == "100"
    assert crispor.output.splitlines()[-2].split("│")[-2].strip() == "20"
