"""Ranking guides by specificity, and the review-ready report object."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ethos.genome import SequenceRecord, cfd_score, find_guides, mit_score, rank_guides
from ethos.genome.alphabet import decode

CLEAN = "GACGTTACGATCGGATCCAT"
PROMISCUOUS = "TGCAAGCTTAGCCATGGTCA"


def _genome() -> list[SequenceRecord]:
    rng = np.random.default_rng(7)
    background = decode(rng.integers(0, 4, 3000).astype(np.uint8))
    near_copy = PROMISCUOUS[:2] + "GT" + PROMISCUOUS[4:]  # CA -> GT  # two PAM-distal mismatches
    seq = (
        background[:500] + CLEAN + "AGG" + background[500:1500]
        + PROMISCUOUS + "TGG" + background[1500:2500] + near_copy + "CGG" + background[2500:]
    )  # fmt: skip
    return [SequenceRecord.from_string("chr1", seq)]


def test_guide_with_a_near_copy_ranks_below_a_unique_guide() -> None:
    reports = rank_guides([PROMISCUOUS, CLEAN], _genome())
    assert [r.guide for r in reports] == [CLEAN, PROMISCUOUS]
    clean, promiscuous = reports
    assert clean.specificity_cfd == 1.0 and clean.offtargets == ()
    (off,) = promiscuous.offtargets
    assert off.hit.mismatches == 2
    expected_cfd = cfd_score(PROMISCUOUS + "TGG", off.hit.site.upper())
    assert off.cfd == pytest.approx(expected_cfd)
    assert off.mit == pytest.approx(mit_score(PROMISCUOUS, off.hit.protospacer))
    assert promiscuous.specificity_cfd == pytest.approx(100 / (100 + 100 * expected_cfd))
    assert promiscuous.mismatch_histogram() == {0: 0, 1: 0, 2: 1, 3: 0, 4: 0}


def test_guides_found_in_the_genome_know_their_own_locus() -> None:
    genome = _genome()
    region = SequenceRecord("chr1", genome[0].codes)
    guides = [g for g in find_guides(region) if g.sequence in (CLEAN, PROMISCUOUS)]
    reports = rank_guides(guides, genome)
    for r in reports:
        on = [h for h in r.hits if h.is_on_target]
        assert len(on) == 1 and r.guide_info is not None
        assert on[0].hit.position == r.guide_info.position


def test_report_as_dict_is_json_ready_for_a_later_review() -> None:
    (report, _) = rank_guides([PROMISCUOUS, CLEAN], _genome(), max_mismatches=3)[::-1]
    payload = json.loads(json.dumps(report.as_dict()))
    assert payload["guide"] == PROMISCUOUS
    assert payload["offtargets"][0]["mismatches"] == 2
    assert set(payload["offtargets"][0]) >= {"chromosome", "position", "site", "strand", "cfd"}
