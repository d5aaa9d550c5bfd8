"""Candidate guides of a target region: every protospacer next to a PAM, on both strands.

Each guide carries the flags a designer checks first: GC content (guides far from 40-60 % GC
tend to cut poorly), a TTTT run (terminates RNA polymerase III transcription of a U6-driven
guide; Wang et al., Science 343:80, 2014) and long homopolymers (synthesis and cloning errors).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ethos.genome.alphabet import PamPattern, as_pam, decode, reverse_complement
from ethos.genome.errors import GenomeError
from ethos.genome.fasta import SequenceRecord
from ethos.genome.sites import STRANDS, Strand, pam_sites

#: SpCas9 cuts 3 bp upstream (PAM-proximal side) of the PAM (Jinek et al., Science 337:816, 2012).
CUT_OFFSET_FROM_PAM_BP = 3


@dataclass(frozen=True)
class Guide:
    """A protospacer in a target region. ``position`` is the 0-based leftmost forward coordinate
    of the whole site (protospacer + PAM), as for off-target hits; ``cut_position`` is the
    forward coordinate of the base right after the expected blunt cut."""

    sequence: str
    pam: str
    chromosome: str
    position: int
    strand: Strand
    cut_position: int
    gc_fraction: float
    poly_t: bool
    homopolymer: bool

    @property
    def site(self) -> str:
        """Protospacer + PAM in guide orientation (the 23-mer CFD takes for NGG)."""
        return self.sequence + self.pam

    def as_row(self) -> dict[str, object]:
        """A plain dict for tables, JSON and review."""
        return asdict(self)


def _longest_run(seq: str) -> int:
    return max((len(m.group(0)) for m in re.finditer(r"(.)\1*", seq)), default=0)


def find_guides(
    target: SequenceRecord | str,
    *,
    pam: str | PamPattern = "NGG",
    guide_length: int = 20,
    homopolymer_bp: int = 5,
) -> list[Guide]:
    """All guides of ``target`` (a record or an ``ACGTN`` string), sorted by position, strand.

    Protospacers containing N are skipped: a guide must be a known sequence. ``homopolymer``
    flags a run of at least ``homopolymer_bp`` identical bases in the protospacer.
    """
    record = (
        target
        if isinstance(target, SequenceRecord)
        else SequenceRecord.from_string("target", target)
    )
    pam_pattern = as_pam(pam)
    if not 1 <= guide_length <= 32:
        raise GenomeError(f"guide_length={guide_length} is outside 1..32")
    if homopolymer_bp < 2:
        raise GenomeError(f"homopolymer_bp={homopolymer_bp} must be at least 2")
    site_len = guide_length + len(pam_pattern)
    guides: list[Guide] = []
    for strand in STRANDS:
        for p in pam_sites(record.codes, pam_pattern, guide_length, strand).tolist():
            window = record.codes[p : p + site_len]
            forward = decode(window)
            site = forward if strand == "+" else reverse_complement(forward)
            protospacer = site[:guide_length]
            if "N" in protospacer:
                continue
            if strand == "+":
                cut = p + guide_length - CUT_OFFSET_FROM_PAM_BP
            else:
                cut = p + len(pam_pattern) + CUT_OFFSET_FROM_PAM_BP
            gc = sum(ch in "GC" for ch in protospacer) / guide_length
            guides.append(
                Guide(
                    sequence=protospacer,
                    pam=site[guide_length:],
                    chromosome=record.name,
                    position=p,
                    strand=strand,
                    cut_position=cut,
                    gc_fraction=gc,
                    poly_t="TTTT" in protospacer,
                    homopolymer=_longest_run(protospacer) >= homopolymer_bp,
                )
            )
    guides.sort(key=lambda g: (g.position, g.strand))
    return guides
