"""The ethics gate for edits: policy decisions, recorded review, coding regions, ledger, bad input.

The cases are built by :func:`genome_edit_case.write_case` (two 600-bp random chromosomes with the
guide's intended site in gene DEMO1 at chr1:100).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from genome_edit_case import FAR, FAR_AT, GENE_BED, GUIDE, NEAR, NEAR_AT, write_case

from ethos.errors import EthosError
from ethos.genome import (
    EditRequest,
    GenomeError,
    SequenceRecord,
    approve_edit,
    load_edit_request,
    read_bed,
    review_edit,
)
from ethos.genome.edit_request import MAX_REQUEST_BYTES
from ethos.genome.review import LEDGER_KIND
from ethos.governance.ledger import Ledger
from ethos.governance.metric_paths import EDIT_LEAVES
from ethos.governance.policy import PolicyError, load_policy, policy_text
from ethos.governance.scorecard import score_run


@pytest.fixture()
def ledger_url(tmp_path: Path) -> str:
    return str(tmp_path / "ledger.db")


def test_somatic_therapy_with_clean_offtargets_passes_and_is_recorded(
    tmp_path: Path, ledger_url: str
) -> None:
    review = review_edit(write_case(tmp_path), ledger_url=ledger_url, actor="tester")
    assert review.decision == "PASS" and review.exit_code == 0
    assert review.report.offtargets == () and review.on_target.hit.position == 100
    assert review.documents["edit"]["guide"]["on_target_in_target_gene"] is True
    with Ledger.open(ledger_url) as ledger:
        (entry,) = ledger.entries()
        assert ledger.verify().ok
    assert entry.kind == LEDGER_KIND and entry.decision == "PASS" and entry.actor == "tester"
    assert entry.run_id == review.request.edit_id
    assert entry.payload["policy"] == "genome-edit"
    assert entry.config_hash == review.request.digest()
    assert review.ledger is not None and review.ledger["entry_hash"] == entry.entry_hash


@pytest.mark.parametrize(
    ("cells", "purpose", "constraint"),
    [("germline", "therapy", "germline edit"), ("somatic", "enhancement", "enhancement edit")],
)
def test_germline_or_enhancement_needs_review_and_passes_once_approved(
    tmp_path: Path, ledger_url: str, cells: str, purpose: str, constraint: str
) -> None:
    request = write_case(tmp_path, cells=cells, purpose=purpose)
    first = review_edit(request, ledger_url=ledger_url)
    assert first.decision == "REVIEW" and first.exit_code == 3
    assert any(r.startswith(f"review required: {constraint}") for r in first.reasons)
    status = {c.label: c.status for c in first.scorecard.constraints}
    assert status[constraint] == "needs_review"

    approval, decided = approve_edit(
        request, actor="Dr. A. Lee", note="ethics board, minute 12", ledger_url=ledger_url
    )
    assert first.ledger is not None
    assert approval.kind == "approval" and decided.seq == first.ledger["seq"]
    assert approval.payload["approves_decision"] == decided.entry_hash

    second = review_edit(request, ledger_url=ledger_url)
    assert second.decision == "PASS" and second.exit_code == 0
    assert second.scorecard.decision == "REVIEW"  # the engine's verdict, cleared by the approval
    assert second.approval is not None and second.approval["approved_by"] == "Dr. A. Lee"
    assert "approved by Dr. A. Lee" in second.reasons[-1]
    with Ledger.open(ledger_url) as ledger:
        decisions = [e.decision for e in ledger.entries()]
        assert ledger.verify().ok
    assert decisions == ["REVIEW", "approved", "PASS"]


def test_approval_covers_only_the_same_request_genome_annotation_and_policy(
    tmp_path: Path, ledger_url: str
) -> None:
    request = write_case(tmp_path, cells="germline")
    review_edit(request, ledger_url=ledger_url)
    approve_edit(request, actor="Dr. A. Lee", note="approved as written", ledger_url=ledger_url)
    assert review_edit(request, ledger_url=ledger_url).decision == "PASS"
    other_bed = tmp_path / "other.bed"
    other_bed.write_text(GENE_BED + "chr2\t0\t10\tDEMO2\n")
    assert review_edit(request, bed=other_bed, ledger_url=ledger_url).decision == "REVIEW"
    changed = write_case(tmp_path, cells="germline", rationale="a different request")
    assert review_edit(changed, ledger_url=ledger_url).decision == "REVIEW"


def test_only_a_review_can_be_approved(tmp_path: Path, ledger_url: str) -> None:
    request = write_case(tmp_path)
    with pytest.raises(GenomeError, match="no recorded review"):
        approve_edit(request, actor="A", note="n", ledger_url=ledger_url)
    review_edit(request, ledger_url=ledger_url)
    with pytest.raises(GenomeError, match="nothing to approve"):
        approve_edit(request, actor="A", note="n", ledger_url=ledger_url)
    failing = write_case(tmp_path, offtargets={NEAR_AT: NEAR}, bed=GENE_BED + "chr2\t0\t600\tX\n")
    assert review_edit(failing, ledger_url=ledger_url).decision == "FAIL"
    with pytest.raises(GenomeError, match="a FAIL cannot be approved"):
        approve_edit(failing, actor="A", note="n", ledger_url=ledger_url)
    with pytest.raises(EthosError, match="approver's name"):
        approve_edit(failing, actor="  ", note="n", ledger_url=ledger_url)


@pytest.mark.parametrize(
    ("bed_line", "decision"),
    [
        ("chr2\t0\t600\tOTHER\n", "FAIL"),  # the whole chromosome is coding
        (f"chr2\t{NEAR_AT + 22}\t{NEAR_AT + 100}\tOTHER\n", "FAIL"),  # the PAM's last base
        (f"chr2\t{NEAR_AT + 23}\t{NEAR_AT + 100}\tOTHER\n", "PASS"),  # the first base after it
        (f"chr2\t{NEAR_AT - 50}\t{NEAR_AT}\tOTHER\n", "PASS"),  # ends right before the site
        ("", "PASS"),  # no coding region on chr2
    ],
)
def test_offtarget_above_the_cfd_limit_fails_only_inside_a_coding_region(
    tmp_path: Path, ledger_url: str, bed_line: str, decision: str
) -> None:
    request = write_case(tmp_path, offtargets={NEAR_AT: NEAR}, bed=GENE_BED + bed_line)
    review = review_edit(request, ledger_url=ledger_url)
    (off,) = review.report.offtargets
    assert (off.hit.chromosome, off.hit.position, off.hit.mismatches) == ("chr2", NEAR_AT, 3)
    assert off.cfd == pytest.approx(0.5789, abs=1e-4)
    assert review.decision == decision
    constraint = next(c for c in review.scorecard.constraints if c.label == "coding off-targets")
    assert constraint.status == ("broken" if decision == "FAIL" else "holds")
    if decision == "FAIL":
        assert review.exit_code == 1
        assert review.documents["edit"]["offtargets"]["max_coding_cfd"] == pytest.approx(off.cfd)
        assert review.offtarget_frame()["coding"].tolist() == ["OTHER"]


def test_coding_offtarget_below_the_cfd_limit_does_not_fail(
    tmp_path: Path, ledger_url: str
) -> None:
    request = write_case(tmp_path, offtargets={FAR_AT: FAR}, bed=GENE_BED + "chr2\t0\t600\tX\n")
    review = review_edit(request, ledger_url=ledger_url)
    assert review.documents["edit"]["offtargets"]["coding"] == 1
    assert review.documents["edit"]["offtargets"]["max_coding_cfd"] < 0.01
    assert review.decision == "PASS"


def test_intended_site_outside_the_declared_gene_needs_review(
    tmp_path: Path, ledger_url: str
) -> None:
    review = review_edit(write_case(tmp_path, target_gene="DEMO2"), ledger_url=ledger_url)
    assert review.decision == "REVIEW"
    assert any("intended site in the declared gene" in r for r in review.reasons)
    bed3 = write_case(tmp_path, bed="chr1\t50\t200\n")  # no names: cannot be checked
    assert review_edit(bed3, ledger_url=ledger_url, record=False).decision == "REVIEW"


def test_edit_document_uses_exactly_the_policy_vocabulary(tmp_path: Path) -> None:
    review = review_edit(write_case(tmp_path), record=False, ledger_url=str(tmp_path / "l.db"))
    leaves = {leaf for section in review.documents["edit"].values() for leaf in section}
    assert leaves == EDIT_LEAVES
    json.dumps(review.to_dict())  # JSON-ready


def test_policy_engine_keeps_edit_and_model_policies_apart(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="subject 'edit'"):
        load_policy("genome-edit", subject="model")
    with pytest.raises(PolicyError, match="subject 'model'"):
        load_policy("medical", subject="edit")
    mixed = yaml.safe_load(policy_text("genome-edit"))
    mixed["constraints"].append({"metric": "metrics.test.auroc", "op": ">=", "value": 0.7})
    (tmp_path / "mixed.yaml").write_text(yaml.safe_dump(mixed))
    with pytest.raises(PolicyError, match="not in the edit document"):
        load_policy(tmp_path / "mixed.yaml")
    with pytest.raises(PolicyError, match="subject 'model'"):
        review_edit(write_case(tmp_path), policy="medical", record=False)


def test_on_break_review_constraint_makes_review_not_fail() -> None:
    policy = load_policy("genome-edit")
    documents = {
        "edit": {
            "request": {"germline": True, "enhancement": False},
            "guide": {
                "specificity_cfd": 1.0,
                "specificity_mit": 1.0,
                "on_target_in_target_gene": 1,
            },
            "offtargets": {"max_coding_cfd": 0.0},
        }
    }
    card = score_run(policy, documents)
    assert card.decision == "REVIEW"
    documents["edit"]["offtargets"]["max_coding_cfd"] = 0.9
    assert score_run(policy, documents).decision == "FAIL"  # a broken hard limit still fails


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cells": "mitochondrial"}, r"cells: 'mitochondrial' is not one of 'somatic' or 'germ"),
        ({"purpose": "cosmetic"}, r"purpose: 'cosmetic' is not one of 'therapy' or 'enhanc"),
        ({"guide": GUIDE + "AGG"}, r"guide: .* has 23 bases; expected 20"),
        ({"guide": GUIDE[:-1]}, r"has 19 bases; expected 20"),
        ({"guide": GUIDE[:-1] + "N"}, r"character 'N' at position 20"),
        ({"pam": "NGJ"}, r"unknown IUPAC code 'J'"),
        ({"max_mismatches": 9}, r"max_mismatches: .*less than or equal to 6"),
        ({"target_gene": "DEMO1; rm -rf /"}, r"target_gene: .* is not a gene symbol"),
        ({"name": "<script>alert(1)</script>"}, r"name: .* is not an identifier"),
        ({"requested_by": "Dr. Lee\x1b[2J"}, r"control or direction character '\\x1b'"),
        ({"rationale": "fine \u202eenil"}, r"control or direction character '\\u202e'"),
        ({"rationale": "x" * 5000}, r"rationale has 5000 characters; the limit is 4000"),
        ({"gudie": GUIDE}, r"gudie: unknown key \(did you mean 'guide'\?\)"),
        ({"target_site": {"chromosome": "chr1", "position": -1, "strand": "+"}}, r"position"),
    ],
)
def test_bad_request_fields_are_named_with_a_fix(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(GenomeError, match=message) as caught:
        load_edit_request(write_case(tmp_path, **changes))
    assert "docs/genome.md" in str(caught.value)


def test_missing_fields_are_listed_together(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("name: x\nguide: " + GUIDE + "\n")
    with pytest.raises(GenomeError) as caught:
        load_edit_request(tmp_path / "r.yaml")
    text = str(caught.value)
    for field in ("cells", "purpose", "target_gene"):
        assert f"{field}: required, missing" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"- a list\n- not a mapping\n", "must be a mapping"),
        (b"name: [unclosed\n", r"not valid YAML \(line 2"),
        (b"name: \xff\xfe\n", "not UTF-8"),
        (b"a: &a [1]\nb: *a\n" + b"#" * (MAX_REQUEST_BYTES + 1), "larger than 64 KiB"),
    ],
)
def test_unreadable_request_files_are_errors(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "r.yaml").write_bytes(content)
    with pytest.raises(GenomeError, match=message):
        load_edit_request(tmp_path / "r.yaml")
    with pytest.raises(GenomeError, match="does not exist"):
        load_edit_request(tmp_path / "missing.yaml")


def test_json_request_is_read_and_digest_ignores_layout_and_file_locations(tmp_path: Path) -> None:
    request = load_edit_request(write_case(tmp_path))
    body = request.model_dump(mode="json") | {"genome": "/elsewhere/genome.fa"}
    (tmp_path / "r.json").write_text(json.dumps(body, indent=4))
    again = load_edit_request(tmp_path / "r.json")
    assert isinstance(again, EditRequest) and again.digest() == request.digest()
    assert again.edit_id == request.edit_id
    (tmp_path / "bad.json").write_text("{'single': 'quotes'}")
    with pytest.raises(GenomeError, match="not valid JSON"):
        load_edit_request(tmp_path / "bad.json")


def test_guide_without_its_site_or_wrong_declared_site_is_an_error(tmp_path: Path) -> None:
    absent = "ACGTACGTACGTACGTACGT"
    with pytest.raises(GenomeError, match="has no perfect match"):
        review_edit(write_case(tmp_path, guide=absent), record=False)
    site = {"chromosome": "chr1", "position": 101, "strand": "+"}
    with pytest.raises(GenomeError, match=r"declared target site chr1:101 \(\+\).*\n.*chr1:100"):
        review_edit(write_case(tmp_path, target_site=site), record=False)
    site["position"] = 100
    assert review_edit(write_case(tmp_path, target_site=site), record=False).decision == "PASS"


def test_missing_genome_or_bed_says_how_to_give_one(tmp_path: Path) -> None:
    request = write_case(tmp_path, genome=None, coding_regions=None)
    with pytest.raises(GenomeError, match=r"no genome file.*\n.*--genome"):
        review_edit(request, record=False)
    with pytest.raises(GenomeError, match=r"no coding-region BED file.*\n.*--bed"):
        review_edit(request, genome=tmp_path / "genome.fa", record=False)


# -- the BED reader ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "has no regions"),
        ("# only a comment\ntrack name=x\n\n", "has no regions"),
        ("chr1\t200\t100\tG\n", r"line 1: chromEnd 100 is before chromStart 200"),
        ("chr1\t-5\t100\n", r"chromStart '-5' is not a non-negative whole number"),
        ("chr1\t1.5\t100\n", r"chromStart '1.5' is not"),
        ("chr1\t10\n", r"2 tab-separated column\(s\), need at least 3"),
        ("chr1 10 100 G\n", r"separated by tabs, not spaces"),
        ("chr1\t10\t100\tG\nchr1\t10\t100\n", r"line 2: 3 columns, but line 1 has 4"),
        ("chr1\t10\t100\tG\t0\t*\n", r"strand '\*' is not"),
        ("chr1\t10\t100\tG\t0\t+\t10\t100\t0\t1\n", r"10 columns; BED has 3 to 9 or 12"),
        ("chr1\t10\t100\tG\t0\t+\t5\t100\n", r"thickStart 5 and thickEnd 100 must satisfy"),
        ("chr1\t10\t100\tG\x07\n", r"name .* control characters"),
        ("chr 1\t10\t100\n", r"chromosome name 'chr 1'"),
        ("chr1\t0\t100\tG\t0\t+\t0\t100\t0\t2\t10,\t0,90,\n", r"blockCount is 2 but blockSizes"),
        ("chr1\t0\t100\tG\t0\t+\t0\t100\t0\t2\t10,20,\t0,50,\n", r"blocks must .* end at chromEnd"),
    ],
)
def test_malformed_bed_lines_are_errors_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "c.bed").write_text(text)
    with pytest.raises(GenomeError, match=message):
        read_bed(tmp_path / "c.bed")


def test_bed_that_is_not_text_or_not_there(tmp_path: Path) -> None:
    (tmp_path / "c.bed").write_bytes(b"chr1\t0\t10\t\xff\n")
    with pytest.raises(GenomeError, match=r"line 1: byte b'\\xff' is not UTF-8"):
        read_bed(tmp_path / "c.bed")
    with pytest.raises(GenomeError, match="does not exist"):
        read_bed(tmp_path / "missing.bed")


def test_bed12_counts_only_coding_exon_bases_and_bed_matches_the_genome(tmp_path: Path) -> None:
    # Two exons [100, 150) and [300, 400); CDS [120, 350): coding = [120, 150) and [300, 350).
    line = "chr1\t100\t400\tGENE\t0\t+\t120\t350\t0\t2\t50,100,\t0,200,\n"
    (tmp_path / "c.bed").write_text("browser position chr1\n# header\n" + line)
    regions = read_bed(tmp_path / "c.bed")
    assert [(r.start, r.end) for r in regions.regions] == [(120, 150), (300, 350)]
    assert [r.label for r in regions.overlapping("chr1", 149, 151)] == ["GENE"]
    assert regions.overlapping("chr1", 150, 300) == []  # intron
    assert regions.overlapping("chr1", 100, 120) == []  # 5' UTR
    assert regions.overlapping("chrX", 0, 10**6) == []
    noncoding = tmp_path / "nc.bed"
    noncoding.write_text("chr1\t100\t400\tRNA\t0\t+\t100\t100\n")  # thickStart == thickEnd
    with pytest.raises(GenomeError, match="has no coding bases"):
        read_bed(noncoding)
    with pytest.raises(GenomeError, match=r"names no chromosome.*\n.*'chr1' in both"):
        regions.check_genome([SequenceRecord.from_string("1", "A" * 500)])
    with pytest.raises(GenomeError, match=r"ends at 350 but chromosome 'chr1'.* has 200 bp"):
        regions.check_genome([SequenceRecord.from_string("chr1", "A" * 200)])
