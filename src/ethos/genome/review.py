"""The ethics gate for gene edits: ``ethos genome review`` and ``ethos genome approve``.

A review takes an edit request (:mod:`.edit_request`), searches the guide's off-targets in the
genome, marks those that overlap annotated coding sequence (:mod:`.bed`), and builds the
``edit`` document a policy reads::

    edit.request     germline, somatic, enhancement, therapy           (1 / 0)
    edit.guide       specificity_cfd, specificity_mit (0..1], on_target_sites,
                     on_target_in_target_gene (1 / 0; missing without BED names),
                     gc_fraction, poly_t, homopolymer
    edit.offtargets  total, coding, max_cfd, max_mit, max_coding_cfd, max_coding_mit
                     (0 when there is none; missing where a score is undefined for the PAM)

It is scored by the same engine as models (:func:`ethos.governance.scorecard.score_run`) under a
policy with ``subject: edit`` (bundled: ``genome-edit``), so the decision rule is the same: FAIL
on a broken constraint, REVIEW on a constraint marked ``on_break: review`` (germline,
enhancement), a missing metric or W below the threshold, otherwise PASS. Exit codes follow
``ethos gate``: 0 PASS, 1 FAIL, 3 REVIEW, 2 a user error.

A REVIEW is cleared by a named human's approval, recorded with
:func:`ethos.governance.approve.append_approval` (``ethos genome approve``), of a REVIEW decision
about the same request content, genome, coding annotation and policy (all compared by sha256): a
later review of exactly that edit then PASSes and says who approved it. Change any of them and
the old approval no longer applies. A FAIL cannot be approved. Every decision is appended to the
tamper-evident ledger as a ``genome.edit_review`` entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from ethos.genome.bed import CodingRegions, read_bed
from ethos.genome.edit_request import EditRequest, load_edit_request
from ethos.genome.errors import GenomeError
from ethos.genome.fasta import SequenceRecord, read_fasta
from ethos.genome.guides import Guide, find_guides
from ethos.genome.offtarget import OffTargetHit, search_offtargets
from ethos.genome.ranking import GuideReport, ScoredHit, guide_report
from ethos.hashing import file_sha256

if TYPE_CHECKING:  # governance loads the audit vocabulary; import it only when reviewing
    from ethos.governance.ledger import Ledger, LedgerEntry
    from ethos.governance.scorecard import Scorecard

DEFAULT_POLICY = "genome-edit"
LEDGER_KIND = "genome.edit_review"
# as ethos gate (governance.gate.EXIT_CODES); INSUFFICIENT_EVIDENCE only under a policy that asks
# for it on a constrained value with an interval
EXIT_CODES = {"PASS": 0, "FAIL": 1, "REVIEW": 3, "INSUFFICIENT_EVIDENCE": 4}
Decision = Literal["PASS", "REVIEW", "FAIL", "INSUFFICIENT_EVIDENCE"]


@dataclass(frozen=True)
class EditReview:
    """Everything one review decided and why; ``decision`` is final (after any approval)."""

    request: EditRequest
    decision: Decision
    reasons: list[str]
    scorecard: Scorecard
    report: GuideReport
    coding: dict[int, list[str]]
    documents: dict[str, Any]
    digests: dict[str, str]
    approval: dict[str, Any] | None = None
    ledger: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    @property
    def on_target(self) -> ScoredHit:
        return next(h for h in self.report.hits if h.is_on_target)

    def offtarget_frame(self) -> pd.DataFrame:
        """Off-targets, most active (CFD, then MIT) first, with the coding regions they touch."""
        rows = []
        for i, h in enumerate(self.report.hits):
            if h.is_on_target:
                continue
            rows.append(
                {
                    **h.hit.as_row(),
                    "cfd": h.cfd,
                    "mit": h.mit,
                    "coding": ", ".join(self.coding.get(i, [])) or "-",
                }
            )
        columns = ["chromosome", "position", "strand", "site", "mismatches", "cfd", "mit"]
        frame = pd.DataFrame(rows, columns=["guide", *columns, "coding"])[[*columns, "coding"]]
        ordered = frame.sort_values(
            ["cfd", "mit"], ascending=False, na_position="first", kind="stable"
        )  # an undefined score (NaN) is shown first: it could be anything
        return ordered.reset_index(drop=True)

    def constraint_frame(self) -> pd.DataFrame:
        """One row per policy constraint: its metric, limit, value and status."""
        return pd.DataFrame(
            [
                {
                    "constraint": c.label,
                    "metric": c.metric,
                    "limit": f"{c.op} {c.limit:g}",
                    "value": math.nan if c.value is None else c.value,
                    "status": c.status,
                }
                for c in self.scorecard.constraints
            ],
            columns=["constraint", "metric", "limit", "value", "status"],
        )

    def request_frame(self) -> pd.DataFrame:
        """The request as declared, one field a row."""
        on = self.on_target.hit
        fields = {
            **self.request.model_dump(exclude={"target_site", "genome", "coding_regions"}),
            "intended site": f"{on.chromosome}:{on.position} ({on.strand})",
            "edit id": self.request.edit_id,
        }
        return pd.DataFrame(
            [{"field": k, "value": "" if v is None else str(v)} for k, v in fields.items()]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (decision, reasons, documents, digests, approval, ledger)."""
        return {
            "edit_id": self.request.edit_id,
            "decision": self.decision,
            "engine_decision": self.scorecard.decision,
            "reasons": self.reasons,
            "welfare": self.scorecard.welfare,
            "threshold": self.scorecard.threshold,
            "policy": self.scorecard.policy,
            "documents": self.documents,
            "digests": self.digests,
            "approval": self.approval,
            "ledger": self.ledger,
        }

    def __repr__(self) -> str:
        return (
            f"<EditReview {self.request.name!r}: {self.decision} under {self.scorecard.policy} "
            f"(W = {self.scorecard.welfare:.3f}), {len(self.report.offtargets)} off-targets, "
            f"{self.documents['edit']['offtargets']['coding']} in coding regions>"
        )


def _resolve(option: str | Path | None, declared: str | None, base: Path, what: str) -> Path:
    if option is not None:
        return Path(option)
    if declared is not None:
        return base / declared
    flag = "--genome" if what == "genome" else "--bed"
    key = "genome" if what == "genome" else "coding_regions"
    raise GenomeError(
        f"no {what} file: the request names none and {flag} was not given",
        hint=f"pass {flag} PATH, or add '{key}: PATH' to the request",
    )


def _on_target_index(
    hits: Sequence[OffTargetHit], request: EditRequest, regions: CodingRegions
) -> int:
    perfect = [i for i, h in enumerate(hits) if h.mismatches == 0]
    site = request.target_site
    if site is not None:
        for i in perfect:
            h = hits[i]
            if (h.chromosome, h.position, h.strand) == (
                site.chromosome,
                site.position,
                site.strand,
            ):
                return i
        found = ", ".join(
            f"{hits[i].chromosome}:{hits[i].position} ({hits[i].strand})" for i in perfect[:5]
        )
        raise GenomeError(
            f"the declared target site {site.chromosome}:{site.position} ({site.strand}) is not "
            f"a perfect match of guide {request.guide} followed by {request.pam}",
            hint=f"perfect matches: {found or 'none'}",
        )
    if not perfect:
        raise GenomeError(
            f"guide {request.guide} has no perfect match followed by {request.pam} in the genome, "
            "so the edit would not cut its target",
            hint="check the guide, the PAM and that the genome is the one the edit is made in",
        )
    in_gene = [
        i
        for i in perfect
        if any(
            r.name == request.target_gene
            for r in regions.overlapping(
                hits[i].chromosome, hits[i].position, hits[i].position + len(hits[i].site)
            )
        )
    ]
    return (in_gene or perfect)[0]


def _guide_info(records: Sequence[SequenceRecord], hit: OffTargetHit, pam: str) -> Guide | None:
    """The designer's flags (GC, TTTT, homopolymer) of the intended site, via find_guides."""
    record = next(r for r in records if r.name == hit.chromosome)
    window = SequenceRecord(
        name=record.name, codes=record.codes[hit.position : hit.position + len(hit.site)]
    )
    for g in find_guides(window, pam=pam):
        if g.strand == hit.strand and g.sequence == hit.guide:
            return dataclasses.replace(
                g, position=hit.position, cut_position=g.cut_position + hit.position
            )
    return None  # pragma: no cover - the hit is a guide site by construction


def _finite(values: Sequence[float]) -> float | None:
    """The largest value, 0 for none, None when any is undefined (NaN)."""
    if any(math.isnan(v) for v in values):
        return None
    return max(values, default=0.0)


def edit_documents(
    request: EditRequest, report: GuideReport, coding: dict[int, list[str]], names: bool
) -> dict[str, Any]:
    """The ``edit`` document a policy with ``subject: edit`` reads (see the module docstring)."""
    on = next(i for i, h in enumerate(report.hits) if h.is_on_target)
    info = report.guide_info
    off = [(i, h) for i, h in enumerate(report.hits) if not h.is_on_target]
    in_coding = [h for i, h in off if i in coding]
    in_gene = request.target_gene in coding.get(on, []) if names else None
    return {
        "edit": {
            "request": {
                "germline": request.germline,
                "somatic": not request.germline,
                "enhancement": request.enhancement,
                "therapy": not request.enhancement,
            },
            "guide": {
                "specificity_cfd": None
                if math.isnan(report.specificity_cfd)
                else report.specificity_cfd,
                "specificity_mit": None
                if math.isnan(report.specificity_mit)
                else report.specificity_mit,
                "on_target_sites": sum(h.hit.mismatches == 0 for h in report.hits),
                "on_target_in_target_gene": in_gene,
                "gc_fraction": None if info is None else info.gc_fraction,
                "poly_t": None if info is None else info.poly_t,
                "homopolymer": None if info is None else info.homopolymer,
            },
            "offtargets": {
                "total": len(off),
                "coding": len(in_coding),
                "max_cfd": _finite([h.cfd for _, h in off]),
                "max_mit": _finite([h.mit for _, h in off]),
                "max_coding_cfd": _finite([h.cfd for h in in_coding]),
                "max_coding_mit": _finite([h.mit for h in in_coding]),
            },
        }
    }


def review_edit(
    request: EditRequest | str | Path,
    *,
    policy: str | Path = DEFAULT_POLICY,
    genome: str | Path | None = None,
    bed: str | Path | None = None,
    ledger_url: str | None = None,
    actor: str | None = None,
    record: bool = True,
) -> EditReview:
    """Review an edit request under a policy with ``subject: edit`` and record the decision.

    ``request`` is an :class:`EditRequest` or the path of its YAML/JSON file; ``genome`` and
    ``bed`` override the files it names (read relative to the request file, or to the working
    folder for an :class:`EditRequest` object). With ``record=False`` nothing is appended, but
    recorded approvals are still honoured. ``coding`` of the result maps indices of
    ``report.hits`` (the intended site included) to the labels of the regions they overlap.
    """
    from ethos.governance.gate import policy_sha256
    from ethos.governance.ledger import Ledger
    from ethos.governance.policy import load_policy
    from ethos.governance.scorecard import score_run

    if isinstance(request, EditRequest):
        base = Path.cwd()
    else:
        base = Path(request).parent
        request = load_edit_request(request)
    loaded_policy = load_policy(policy, subject="edit")
    genome_path = _resolve(genome, request.genome, base, "genome")
    bed_path = _resolve(bed, request.coding_regions, base, "coding-region BED")
    records = read_fasta(genome_path)
    regions = read_bed(bed_path)
    regions.check_genome(records)

    hits = search_offtargets(
        records, [request.guide], pam=request.pam, max_mismatches=request.max_mismatches
    )
    on_index = _on_target_index(hits, request, regions)
    report = guide_report(
        request.guide,
        hits,
        pam=request.pam,
        max_mismatches=request.max_mismatches,
        on_index=on_index,
        guide_info=_guide_info(records, hits[on_index], request.pam),
    )
    coding: dict[int, list[str]] = {}
    for i, h in enumerate(hits):
        found = regions.overlapping(h.chromosome, h.position, h.position + len(h.site))
        if found:
            coding[i] = list(dict.fromkeys(r.label for r in found))
    documents = edit_documents(request, report, coding, regions.has_names)
    card = score_run(loaded_policy, documents)
    evidence = json.dumps(report.as_dict(), sort_keys=True, default=str)
    digests = {
        "request_sha256": request.digest(),
        "genome_sha256": file_sha256(genome_path),
        "bed_sha256": file_sha256(bed_path),
        "policy_sha256": policy_sha256(policy),
        "evidence_sha256": hashlib.sha256(evidence.encode()).hexdigest(),
    }
    decision: Decision = card.decision
    reasons = list(card.reasons)
    with Ledger.open(ledger_url) as ledger:
        approval = (
            _find_approval(ledger, request.edit_id, digests) if decision == "REVIEW" else None
        )
        if approval is not None:
            decision = "PASS"
            reasons.append(
                f"the REVIEW of this edit (ledger entry {approval['approves_seq']}) was approved "
                f"by {approval['approved_by']} (entry {approval['seq']}): {approval['note']}"
            )
        review = EditReview(
            request=request,
            decision=decision,
            reasons=reasons,
            scorecard=card,
            report=report,
            coding=coding,
            documents=documents,
            digests=digests,
            approval=approval,
        )
        if record:
            entry = _append_review(ledger, review, loaded_policy.version, actor)
            review = dataclasses.replace(
                review,
                ledger={"url": ledger.url, "seq": entry.seq, "entry_hash": entry.entry_hash},
            )
    return review


def _append_review(
    ledger: Ledger, review: EditReview, policy_version: str, actor: str | None
) -> LedgerEntry:
    from ethos.governance.gate import current_actor

    request, card = review.request, review.scorecard
    coding_rows = review.offtarget_frame().query("coding != '-'").head(20)
    return ledger.append(
        kind=LEDGER_KIND,
        actor=actor or current_actor(),
        run_id=request.edit_id,
        dataset_fingerprint=review.digests["genome_sha256"],
        config_hash=review.digests["request_sha256"],
        audit_digest=review.digests["evidence_sha256"],
        decision=review.decision,
        payload={
            "policy": card.policy,
            "policy_version": policy_version,
            "policy_sha256": review.digests["policy_sha256"],
            "bed_sha256": review.digests["bed_sha256"],
            "engine_decision": card.decision,
            "welfare": round(card.welfare, 6),
            "threshold": card.threshold,
            "reasons": review.reasons[:20],
            "request": request.model_dump(
                mode="json", include={"name", "cells", "purpose", "target_gene", "guide", "pam"}
            )
            | {"max_mismatches": request.max_mismatches},
            "offtargets": review.documents["edit"]["offtargets"],
            "coding_offtargets": json.loads(coding_rows.to_json(orient="records")),
            "approval": None
            if review.approval is None
            else {k: review.approval[k] for k in ("seq", "entry_hash", "approved_by")},
        },
    )


def _find_approval(ledger: Ledger, edit_id: str, digests: dict[str, str]) -> dict[str, Any] | None:
    """The latest approval of a REVIEW of exactly this edit (request, genome, BED, policy)."""
    entries = ledger.entries(run_id=edit_id)
    reviews = {e.entry_hash: e for e in entries if e.kind == LEDGER_KIND}
    for entry in reversed(entries):
        if entry.kind != "approval":
            continue
        approved = reviews.get(str(entry.payload.get("approves_decision")))
        if approved is None or approved.decision != "REVIEW":
            continue
        same = (
            approved.config_hash == digests["request_sha256"]
            and approved.dataset_fingerprint == digests["genome_sha256"]
            and approved.payload.get("bed_sha256") == digests["bed_sha256"]
            and approved.payload.get("policy_sha256") == digests["policy_sha256"]
        )
        if same:
            return {
                "seq": entry.seq,
                "entry_hash": entry.entry_hash,
                "approved_by": entry.actor,
                "note": entry.payload.get("note", ""),
                "approves_seq": approved.seq,
                "approves_decision": approved.entry_hash,
            }
    return None


def approve_edit(
    request: EditRequest | str | Path, *, actor: str, note: str, ledger_url: str | None = None
) -> tuple[LedgerEntry, LedgerEntry]:
    """Record ``actor``'s approval of the latest REVIEW decision about this request.

    Returns the approval entry and the decision entry it approves. A request never reviewed,
    or whose latest review PASSed or FAILed, cannot be approved.
    """
    from ethos.governance.approve import append_approval, check_signoff
    from ethos.governance.ledger import Ledger

    actor, note = check_signoff(actor, note)
    if not isinstance(request, EditRequest):
        request = load_edit_request(request)
    with Ledger.open(ledger_url) as ledger:
        reviews = ledger.entries(run_id=request.edit_id, kind=LEDGER_KIND)
        if not reviews:
            raise GenomeError(
                f"edit request {request.name!r} has no recorded review in {ledger.url}",
                hint="run `ethos genome review REQUEST` first (with the same --ledger)",
            )
        latest = reviews[-1]
        if latest.decision == "PASS":
            raise GenomeError(
                f"the latest review of {request.name!r} (ledger entry {latest.seq}) passed; "
                "there is nothing to approve"
            )
        if latest.decision != "REVIEW":
            reasons = "; ".join(str(r) for r in latest.payload.get("reasons", [])[:2])
            raise GenomeError(
                f"the latest review of {request.name!r} (ledger entry {latest.seq}) failed "
                f"({reasons})",
                hint="a FAIL cannot be approved: change the guide or the request and review again",
            )
        entry = append_approval(
            ledger,
            actor=actor,
            note=note,
            run_id=request.edit_id,
            approves_decision=latest.entry_hash,
            policy=latest.payload.get("policy"),
            dataset_fingerprint=latest.dataset_fingerprint,
            config_hash=latest.config_hash,
            audit_digest=latest.audit_digest,
        )
    return entry, latest
