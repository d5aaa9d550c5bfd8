"""The off-target search written as plainly as possible: the definition the fast search must meet.

One loop over every position of every record and both strands; a site is a hit when its PAM
matches the pattern (an N in the genome matches no PAM position) and its protospacer differs
from the guide at no more than ``max_mismatches`` positions (an N in the genome always differs).
Slow on purpose (about a second per 100 kbp): it exists for tests and for the benchmark's
speed-up figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ethos.genome.alphabet import PamPattern, reverse_complement
from ethos.genome.fasta import SequenceRecord, read_fasta
from ethos.genome.offtarget import (
    DEFAULT_MAX_MISMATCHES,
    OffTargetHit,
    check_search_inputs,
    format_site,
)


def search_offtargets_reference(
    genome: Sequence[SequenceRecord] | str | Path,
    guides: Sequence[str],
    *,
    pam: str | PamPattern = "NGG",
    max_mismatches: int = DEFAULT_MAX_MISMATCHES,
    guide_length: int = 20,
) -> list[OffTargetHit]:
    """Same contract and output order as :func:`ethos.genome.offtarget.search_offtargets`."""
    records = read_fasta(genome) if isinstance(genome, str | Path) else list(genome)
    clean, pam_pattern = check_search_inputs(guides, pam, max_mismatches, guide_length)
    site_len = guide_length + len(pam_pattern)
    hits: list[OffTargetHit] = []
    for g in clean:
        for rec in records:
            seq = rec.sequence
            for position in range(len(seq) - site_len + 1):
                forward = seq[position : position + site_len]
                for strand, site in (("+", forward), ("-", reverse_complement(forward))):
                    if not pam_pattern.matches(site[guide_length:]):
                        continue
                    mismatches = 0
                    for s, q in zip(site[:guide_length], g, strict=True):
                        if s != q or s == "N":
                            mismatches += 1
                    if mismatches <= max_mismatches:
                        hits.append(
                            OffTargetHit(
                                guide=g,
                                chromosome=rec.name,
                                position=position,
                                site=format_site(site, g),
                                strand="+" if strand == "+" else "-",
                                mismatches=mismatches,
                            )
                        )
    return hits
