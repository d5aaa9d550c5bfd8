"""Genome-wide off-target search: every site within ``k`` mismatches of a guide, next to a PAM.

The search is vectorised. For each chunk of a chromosome and each strand it (1) finds the sites
whose PAM matches (:func:`ethos.genome.sites.pam_sites`, about 1 in 16 positions for NGG),
(2) packs their protospacers two bits per base into ``uint64`` (:func:`.encoding.pack_kmers`),
and (3) counts mismatches to each guide with one XOR and one popcount per site. An N in the genome
never matches: it counts as a mismatch in the protospacer and fails any PAM position.

Rows follow Cas-OFFinder's output (Bae, Park & Kim, Bioinformatics 30:1473, 2014): guide,
chromosome, 0-based position of the site's leftmost forward base, site in guide orientation with
mismatched bases in lower case, strand, mismatch count. :mod:`.offtarget_reference` is the
plain-Python definition that this module must reproduce exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from ethos.genome.alphabet import (
    CODE_N,
    PamPattern,
    as_pam,
    decode,
    encode,
    reverse_complement,
    validate_guide,
)
from ethos.genome.encoding import MAX_KMER, mismatch_counts, pack_kmer, pack_kmers
from ethos.genome.errors import GenomeError
from ethos.genome.fasta import SequenceRecord, read_fasta
from ethos.genome.sites import STRANDS, Strand, pam_sites

DEFAULT_MAX_MISMATCHES = 4
#: Sites per chunk: bounds temporary memory to a few hundred MB on any chromosome.
DEFAULT_CHUNK_BP = 8_000_000


@dataclass(frozen=True)
class OffTargetHit:
    """One genomic site within the mismatch budget of a guide (a Cas-OFFinder output row)."""

    guide: str
    chromosome: str
    position: int
    site: str
    strand: Strand
    mismatches: int

    @property
    def protospacer(self) -> str:
        """The site without its PAM, upper case, in guide orientation."""
        return self.site[: len(self.guide)].upper()

    @property
    def pam(self) -> str:
        """The PAM bases of the site."""
        return self.site[len(self.guide) :].upper()

    def as_row(self) -> dict[str, object]:
        """A plain dict, e.g. for a table, JSON, or a later ethics review."""
        return asdict(self)


def check_search_inputs(
    guides: Sequence[str], pam: str | PamPattern, max_mismatches: int, guide_length: int
) -> tuple[list[str], PamPattern]:
    """Validate guides, PAM and mismatch budget once, for both implementations."""
    if isinstance(guides, str):
        guides = [guides]
    if not 1 <= guide_length <= MAX_KMER:
        raise GenomeError(
            f"guide_length={guide_length} is outside 1..{MAX_KMER}",
            hint="the search packs a protospacer into 64 bits; SpCas9 guides are 20 nt",
        )
    if len(guides) == 0:
        raise GenomeError("no guides given", hint="pass at least one 20-nt protospacer")
    clean = [validate_guide(g, length=guide_length) for g in guides]
    if not 0 <= max_mismatches <= guide_length:
        raise GenomeError(
            f"max_mismatches={max_mismatches} is outside 0..{guide_length}",
            hint="Cas-OFFinder-style searches usually allow up to 4 mismatches",
        )
    return clean, as_pam(pam)


def format_site(site: str, guide: str) -> str:
    """Lower-case the protospacer bases of ``site`` that differ from ``guide`` (N always does)."""
    chars = [s.lower() if (s != g or s == "N") else s for s, g in zip(site, guide, strict=False)]
    return "".join(chars) + site[len(guide) :]


#: One hit before it becomes an :class:`OffTargetHit`: guide index, record index, position,
#: strand, mismatches, site as :func:`format_site` writes it. Sorting these tuples on their first
#: four fields gives the output order.
HitRow = tuple[int, int, int, Strand, int, str]


@dataclass(frozen=True)
class SearchSpec:
    """What to search for, validated once: the guides (clean and packed), PAM, budget, chunk.

    Small and picklable, so a worker process can receive it with each shard; both the
    single-process search and the sharded one (:mod:`.offtarget_sharded`) call
    :meth:`search_codes` and :meth:`to_hits`, so they cannot drift apart.
    """

    guides: tuple[str, ...]
    packed_guides: tuple[int, ...]
    pam: PamPattern
    guide_length: int
    max_mismatches: int
    chunk_bp: int

    @classmethod
    def prepare(
        cls,
        guides: Sequence[str],
        *,
        pam: str | PamPattern,
        max_mismatches: int,
        guide_length: int,
        chunk_bp: int = DEFAULT_CHUNK_BP,
    ) -> SearchSpec:
        """Validate the inputs (see :func:`check_search_inputs`) and pack the guides."""
        clean, pam_pattern = check_search_inputs(guides, pam, max_mismatches, guide_length)
        if chunk_bp < 1:
            raise GenomeError(f"chunk_bp={chunk_bp} must be positive")
        return cls(
            guides=tuple(clean),
            packed_guides=tuple(pack_kmer(encode(g)) for g in clean),
            pam=pam_pattern,
            guide_length=guide_length,
            max_mismatches=max_mismatches,
            chunk_bp=chunk_bp,
        )

    @property
    def site_len(self) -> int:
        """Bases of one site: protospacer plus PAM."""
        return self.guide_length + len(self.pam)

    def search_codes(
        self, codes: npt.NDArray[np.uint8], *, record_index: int, offset_bp: int = 0
    ) -> list[HitRow]:
        """Every hit whose whole site lies in ``codes``, at positions shifted by ``offset_bp``.

        ``codes`` is a whole record or a window of one starting at base ``offset_bp``.
        """
        n_sites = codes.size - self.site_len + 1
        if n_sites <= 0:
            return []
        is_n = codes == CODE_N
        two_bit = codes & np.uint8(3)
        rows: list[HitRow] = []
        for chunk_start in range(0, n_sites, self.chunk_bp):
            for strand in STRANDS:
                starts = pam_sites(
                    codes, self.pam, self.guide_length, strand,
                    start=chunk_start, stop=chunk_start + self.chunk_bp,
                )  # fmt: skip
                if starts.size == 0:
                    continue
                proto = starts if strand == "+" else starts + len(self.pam)
                values, nmask = pack_kmers(
                    two_bit, is_n, proto, self.guide_length, reverse_complement=strand == "-"
                )
                for g_index, packed in enumerate(self.packed_guides):
                    mm = mismatch_counts(values, nmask, packed, self.guide_length)
                    for i in np.flatnonzero(mm <= self.max_mismatches):
                        at = int(starts[i])
                        site = decode(codes[at : at + self.site_len])
                        if strand == "-":
                            site = reverse_complement(site)
                        rows.append(
                            (
                                g_index,
                                record_index,
                                at + offset_bp,
                                strand,
                                int(mm[i]),
                                format_site(site, self.guides[g_index]),
                            )
                        )
        return rows

    def to_hits(self, rows: list[HitRow], record_names: Sequence[str]) -> list[OffTargetHit]:
        """Rows from any number of records or windows as hits, in the documented order."""
        rows.sort(key=lambda r: r[:4])
        return [
            OffTargetHit(
                guide=self.guides[g_index],
                chromosome=record_names[rec_index],
                position=position,
                site=site,
                strand=strand,
                mismatches=n_mm,
            )
            for g_index, rec_index, position, strand, n_mm, site in rows
        ]


def search_offtargets(
    genome: Sequence[SequenceRecord] | str | Path,
    guides: Sequence[str],
    *,
    pam: str | PamPattern = "NGG",
    max_mismatches: int = DEFAULT_MAX_MISMATCHES,
    guide_length: int = 20,
    chunk_bp: int = DEFAULT_CHUNK_BP,
) -> list[OffTargetHit]:
    """All sites of ``genome`` within ``max_mismatches`` of any guide, with a matching PAM.

    ``genome`` is a FASTA path or already read records. Hits come sorted by guide (input order),
    chromosome (file order), position and strand. The whole genome is held in memory; for one
    larger than memory, or to use several processes or a Ray cluster, see
    :func:`ethos.genome.offtarget_sharded.search_offtargets_sharded` (same hits, same order).
    """
    records = read_fasta(genome) if isinstance(genome, str | Path) else list(genome)
    spec = SearchSpec.prepare(
        guides, pam=pam, max_mismatches=max_mismatches, guide_length=guide_length,
        chunk_bp=chunk_bp,
    )  # fmt: skip
    rows: list[HitRow] = []
    for rec_index, rec in enumerate(records):
        rows.extend(spec.search_codes(rec.codes, record_index=rec_index))
    return spec.to_hits(rows, [rec.name for rec in records])


def hits_to_frame(hits: Sequence[OffTargetHit]) -> pd.DataFrame:
    """Hits as a DataFrame with Cas-OFFinder's column order."""
    columns = ["guide", "chromosome", "position", "site", "strand", "mismatches"]
    return pd.DataFrame([h.as_row() for h in hits], columns=columns)


def write_cas_offinder(hits: Sequence[OffTargetHit], path: str | Path, *, pam_length: int) -> None:
    """Write hits as Cas-OFFinder's tab-separated output (query written as guide + N * PAM)."""
    tmp = Path(f"{path}.tmp")
    with open(tmp, "w", encoding="ascii", newline="") as fh:
        out = csv.writer(fh, delimiter="\t", lineterminator="\n")
        for h in hits:
            query = h.guide + "N" * pam_length
            out.writerow([query, h.chromosome, h.position, h.site, h.strand, h.mismatches])
    tmp.replace(path)
