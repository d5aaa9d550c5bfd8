"""Gene editing: find CRISPR guides, search their off-targets, score them, model regulation.

The pipeline runs one way: :func:`read_fasta` → :func:`find_guides` → :func:`search_offtargets`
(or, for a genome larger than memory or a Ray cluster, :func:`search_offtargets_sharded` over
:func:`iter_windows`)
→ :func:`cfd_score` / :func:`mit_score` → :func:`rank_guides` (a :class:`GuideReport` per guide,
ready for an ethics review) and, for the downstream effect of an edit, :class:`RegulationModel`.
The ethics gate, :func:`review_edit`, scores an :class:`EditRequest` (with coding regions from
:func:`read_bed`) under the same policy engine and ledger as models; :func:`approve_edit`
records a named reviewer's approval of a REVIEW.

Members are imported on first use (:mod:`ethos.lazy`).
"""

from typing import TYPE_CHECKING

from ethos.lazy import lazy_exports

if TYPE_CHECKING:
    from ethos.genome.alphabet import PamPattern, reverse_complement
    from ethos.genome.bed import CodingRegions, Region, read_bed
    from ethos.genome.edit_request import EditRequest, load_edit_request
    from ethos.genome.encoding import TwoBitSequence
    from ethos.genome.errors import GenomeError
    from ethos.genome.fasta import SequenceRecord, read_fasta, write_fasta
    from ethos.genome.fasta_stream import FastaWindow, iter_windows
    from ethos.genome.guides import Guide, find_guides
    from ethos.genome.offtarget import (
        OffTargetHit,
        hits_to_frame,
        search_offtargets,
        write_cas_offinder,
    )
    from ethos.genome.offtarget_reference import search_offtargets_reference
    from ethos.genome.offtarget_sharded import search_offtargets_sharded
    from ethos.genome.ranking import GuideReport, ScoredHit, rank_guides
    from ethos.genome.regulation import (
        EditEffect,
        RegulationModel,
        random_weights,
        simulate_expression,
    )
    from ethos.genome.review import EditReview, approve_edit, review_edit
    from ethos.genome.scoring import MIT_WEIGHTS, cfd_score, guide_specificity, mit_score

_EXPORTS = {
    "PamPattern": "ethos.genome.alphabet",
    "reverse_complement": "ethos.genome.alphabet",
    "CodingRegions": "ethos.genome.bed",
    "Region": "ethos.genome.bed",
    "read_bed": "ethos.genome.bed",
    "EditRequest": "ethos.genome.edit_request",
    "load_edit_request": "ethos.genome.edit_request",
    "TwoBitSequence": "ethos.genome.encoding",
    "GenomeError": "ethos.genome.errors",
    "SequenceRecord": "ethos.genome.fasta",
    "read_fasta": "ethos.genome.fasta",
    "write_fasta": "ethos.genome.fasta",
    "FastaWindow": "ethos.genome.fasta_stream",
    "iter_windows": "ethos.genome.fasta_stream",
    "Guide": "ethos.genome.guides",
    "find_guides": "ethos.genome.guides",
    "OffTargetHit": "ethos.genome.offtarget",
    "hits_to_frame": "ethos.genome.offtarget",
    "search_offtargets": "ethos.genome.offtarget",
    "write_cas_offinder": "ethos.genome.offtarget",
    "search_offtargets_reference": "ethos.genome.offtarget_reference",
    "search_offtargets_sharded": "ethos.genome.offtarget_sharded",
    "GuideReport": "ethos.genome.ranking",
    "ScoredHit": "ethos.genome.ranking",
    "rank_guides": "ethos.genome.ranking",
    "EditEffect": "ethos.genome.regulation",
    "RegulationModel": "ethos.genome.regulation",
    "random_weights": "ethos.genome.regulation",
    "simulate_expression": "ethos.genome.regulation",
    "EditReview": "ethos.genome.review",
    "approve_edit": "ethos.genome.review",
    "review_edit": "ethos.genome.review",
    "MIT_WEIGHTS": "ethos.genome.scoring",
    "cfd_score": "ethos.genome.scoring",
    "guide_specificity": "ethos.genome.scoring",
    "mit_score": "ethos.genome.scoring",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [
    "MIT_WEIGHTS",
    "CodingRegions",
    "EditEffect",
    "EditRequest",
    "EditReview",
    "FastaWindow",
    "GenomeError",
    "Guide",
    "GuideReport",
    "OffTargetHit",
    "PamPattern",
    "Region",
    "RegulationModel",
    "ScoredHit",
    "SequenceRecord",
    "TwoBitSequence",
    "approve_edit",
    "cfd_score",
    "find_guides",
    "guide_specificity",
    "hits_to_frame",
    "iter_windows",
    "load_edit_request",
    "mit_score",
    "random_weights",
    "rank_guides",
    "read_bed",
    "read_fasta",
    "reverse_complement",
    "review_edit",
    "search_offtargets",
    "search_offtargets_reference",
    "search_offtargets_sharded",
    "simulate_expression",
    "write_cas_offinder",
    "write_fasta",
]
