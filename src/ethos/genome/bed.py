"""Annotated coding regions from a BED file, read strictly, for the ethics review of an edit.

BED (UCSC; GA4GH BED v1.0, 2022): one feature per line, tab-separated, ``chrom chromStart
chromEnd`` then optionally ``name score strand thickStart thickEnd itemRgb blockCount blockSizes
blockStarts``. Coordinates are 0-based and half-open, the same as off-target hit positions.
Which bases count as *coding*:

- BED3 to BED6: the whole interval;
- BED7 to BED9: ``[thickStart, thickEnd)``, the coding part of a transcript (empty when the two
  are equal: a non-coding transcript);
- BED12: each block (exon) intersected with ``[thickStart, thickEnd)``, so introns and UTRs are
  not counted.

Lines starting with ``#``, ``track`` or ``browser`` and blank lines are skipped. Anything else that
is not valid BED is an error naming the file, line and column, because a silently skipped line is
a coding region the review would not see. Written here rather than taken from a library: the
maintained readers (pybedtools, pyranges) bring compiled dependencies and accept malformed
lines that a review must refuse.
"""

from __future__ import annotations

import gzip
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ethos.genome.errors import GenomeError
from ethos.genome.fasta import SequenceRecord

_GZIP_MAGIC = b"\x1f\x8b"
_CHROM = re.compile(r"^[!-~]{1,255}$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")
_UINT = re.compile(r"^[0-9]{1,15}$")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
_RGB = re.compile(r"^(0|[0-9]{1,3},[0-9]{1,3},[0-9]{1,3})$")
#: Column counts a BED file may have (BED10 and BED11 are incomplete block descriptions).
COLUMN_COUNTS = (3, 4, 5, 6, 7, 8, 9, 12)
#: A whole-genome exon annotation is tens of MB; a larger file is almost surely something else.
MAX_BED_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Region:
    """One coding interval ``[start, end)`` (0-based) of a BED feature; ``line`` is its line."""

    chromosome: str
    start: int
    end: int
    name: str
    line: int

    @property
    def label(self) -> str:
        """The feature's name, or its coordinates when the BED file has no names."""
        return self.name or f"{self.chromosome}:{self.start}-{self.end}"


class CodingRegions:
    """Coding intervals by chromosome, for overlap queries (see :func:`read_bed`)."""

    def __init__(self, regions: Sequence[Region], *, source: str = "<regions>", columns: int = 3):
        self.source = source
        self.columns = columns
        self.regions = tuple(sorted(regions, key=lambda r: (r.chromosome, r.start, r.end)))
        self._index: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[Region]]]
        self._index = {}
        for chrom in dict.fromkeys(r.chromosome for r in self.regions):
            own = [r for r in self.regions if r.chromosome == chrom]
            starts = np.array([r.start for r in own], dtype=np.int64)
            ends = np.array([r.end for r in own], dtype=np.int64)
            self._index[chrom] = (starts, ends, own)

    @property
    def has_names(self) -> bool:
        """Whether the features are named (BED4 or more), e.g. by gene symbol."""
        return self.columns >= 4

    @property
    def chromosomes(self) -> list[str]:
        return list(self._index)

    def __len__(self) -> int:
        return len(self.regions)

    def __repr__(self) -> str:
        total = sum(r.end - r.start for r in self.regions)
        return (
            f"<CodingRegions {self.source!r}: {len(self)} intervals, {total:,} bp on "
            f"{len(self._index)} chromosomes, BED{self.columns}>"
        )

    def overlapping(self, chromosome: str, start: int, end: int) -> list[Region]:
        """Regions sharing at least one base with ``[start, end)`` on ``chromosome``."""
        found = self._index.get(chromosome)
        if found is None or end <= start:
            return []
        starts, ends, own = found
        stop = int(np.searchsorted(starts, end, side="left"))
        hit = np.flatnonzero(ends[:stop] > start)
        return [own[int(i)] for i in hit]

    def check_genome(self, records: Sequence[SequenceRecord]) -> None:
        """Refuse an annotation that cannot belong to this genome: no chromosome in common, or
        a region past the end of its chromosome (another assembly)."""
        lengths = {r.name: r.length_bp for r in records}
        shared = [c for c in self._index if c in lengths]
        if not shared:
            raise GenomeError(
                f"BED file {self.source!r} names no chromosome of the genome "
                f"(BED: {_few(self.chromosomes)}; genome: {_few(list(lengths))})",
                hint="use an annotation of the same assembly with the same chromosome names "
                "(e.g. 'chr1' in both, not 'chr1' and '1')",
            )
        for chrom in shared:
            _, ends, own = self._index[chrom]
            last = int(np.argmax(ends))
            if int(ends[last]) > lengths[chrom]:
                r = own[last]
                raise GenomeError(
                    f"BED file {self.source!r}, line {r.line}: region {r.label!r} ends at "
                    f"{r.end} but chromosome {chrom!r} of the genome has {lengths[chrom]} bp",
                    hint="the BED file and the genome FASTA come from different assemblies",
                )


def _few(names: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(repr(x) for x in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise GenomeError(f"BED file {str(path)!r} does not exist", hint="check the path") from None
    if path.is_dir():
        raise GenomeError(f"BED path {str(path)!r} is a directory, not a file")
    if size > MAX_BED_BYTES:
        raise GenomeError(
            f"BED file {str(path)!r} is {size:,} bytes; the limit is {MAX_BED_BYTES:,}",
            hint="give only the coding regions (e.g. CDS exons) of the genome under review",
        )
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise GenomeError(f"BED file {str(path)!r} is a damaged gzip file: {exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise GenomeError(
            f"BED file {str(path)!r}, line {line}: byte {raw[exc.start : exc.start + 1]!r} is "
            "not UTF-8 text",
            hint="a BED file is plain text; check that this is the right file",
        ) from None


def read_bed(path: str | Path) -> CodingRegions:
    """Read the coding intervals of a BED file (plain or gzip); see the module docstring."""
    p = Path(path)
    text = _read_text(p)
    regions: list[Region] = []
    columns: int | None = None
    first_line = 0
    for line_no, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.rstrip("\r")
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        fields = line.split("\t")
        where = f"BED file {str(p)!r}, line {line_no}"
        if len(fields) < 3:
            spaced = len(line.split()) >= 3
            raise GenomeError(
                f"{where}: {len(fields)} tab-separated column(s), need at least 3 "
                "(chrom, chromStart, chromEnd)",
                hint="BED columns are separated by tabs, not spaces"
                if spaced
                else "each line is 'chrom<TAB>start<TAB>end[<TAB>name ...]'",
            )
        if len(fields) not in COLUMN_COUNTS:
            raise GenomeError(
                f"{where}: {len(fields)} columns; BED has 3 to 9 or 12",
                hint="cut extra columns off (cut -f1-6), or complete the block columns 10-12",
            )
        if columns is None:
            columns, first_line = len(fields), line_no
        elif len(fields) != columns:
            raise GenomeError(
                f"{where}: {len(fields)} columns, but line {first_line} has {columns}",
                hint="every line of a BED file has the same number of columns",
            )
        regions.extend(_parse_line(fields, where, line_no))
    if columns is None:
        raise GenomeError(
            f"BED file {str(p)!r} has no regions",
            hint="give the coding regions as 'chrom<TAB>start<TAB>end<TAB>gene' lines",
        )
    if not regions:
        raise GenomeError(
            f"BED file {str(p)!r} has no coding bases: every feature has thickStart == thickEnd "
            "(a non-coding transcript)",
            hint="give the coding regions (CDS) of the genome, not only non-coding features",
        )
    return CodingRegions(regions, source=str(p), columns=columns)


def _uint(value: str, column: str, where: str) -> int:
    if not _UINT.match(value):
        raise GenomeError(
            f"{where}: {column} {value[:40]!r} is not a non-negative whole number",
            hint="BED coordinates are 0-based integers without signs, decimals or commas",
        )
    return int(value)


def _parse_line(fields: list[str], where: str, line_no: int) -> list[Region]:
    chrom = fields[0]
    if not _CHROM.match(chrom):
        raise GenomeError(
            f"{where}: chromosome name {chrom[:40]!r} is empty, too long or has spaces or "
            "control characters",
            hint="use the genome FASTA's record names (e.g. chr1)",
        )
    start = _uint(fields[1], "chromStart", where)
    end = _uint(fields[2], "chromEnd", where)
    if end < start:
        raise GenomeError(
            f"{where}: chromEnd {end} is before chromStart {start}",
            hint="BED intervals are [chromStart, chromEnd) with chromEnd >= chromStart",
        )
    name = ""
    if len(fields) >= 4:
        name = fields[3]
        if not _NAME.match(name):
            raise GenomeError(
                f"{where}: name {name[:40]!r} is empty, longer than 255 characters or has "
                "control characters",
                hint="name the feature by its gene symbol, e.g. HBB",
            )
    if len(fields) >= 5 and fields[4] != "." and not _NUMBER.match(fields[4]):
        raise GenomeError(f"{where}: score {fields[4][:40]!r} is not a number or '.'")
    if len(fields) >= 6 and fields[5] not in ("+", "-", "."):
        raise GenomeError(f"{where}: strand {fields[5][:40]!r} is not '+', '-' or '.'")
    thick = (start, end)
    if len(fields) >= 7:
        thick_start = _uint(fields[6], "thickStart", where)
        thick_end = end if len(fields) == 7 else _uint(fields[7], "thickEnd", where)
        if not start <= thick_start <= thick_end <= end:
            raise GenomeError(
                f"{where}: thickStart {thick_start} and thickEnd {thick_end} must satisfy "
                f"chromStart ({start}) <= thickStart <= thickEnd <= chromEnd ({end})",
            )
        thick = (thick_start, thick_end)
    if len(fields) >= 9 and not _RGB.match(fields[8]):
        raise GenomeError(f"{where}: itemRgb {fields[8][:40]!r} is not '0' or 'R,G,B'")
    blocks = [(start, end)] if len(fields) < 12 else _blocks(fields, start, end, where)
    pieces = [(max(a, thick[0]), min(b, thick[1])) for a, b in blocks]
    return [Region(chrom, a, b, name, line_no) for a, b in pieces if b > a]


def _blocks(fields: list[str], start: int, end: int, where: str) -> list[tuple[int, int]]:
    count = _uint(fields[9], "blockCount", where)
    lists = []
    for column, text in (("blockSizes", fields[10]), ("blockStarts", fields[11])):
        items = text.rstrip(",").split(",")
        if len(items) != count or count == 0:
            raise GenomeError(
                f"{where}: blockCount is {count} but {column} lists {len(items)} value(s)",
                hint="blockCount must be positive and match both comma-separated lists",
            )
        lists.append([_uint(x, column, where) for x in items])
    sizes, offsets = lists
    blocks = [(start + o, start + o + s) for s, o in zip(sizes, offsets, strict=True)]
    ordered = all(a[1] <= b[0] for a, b in itertools.pairwise(blocks))
    if offsets[0] != 0 or blocks[-1][1] != end or not ordered:
        raise GenomeError(
            f"{where}: blocks must start at chromStart, end at chromEnd and not overlap",
            hint="blockStarts are offsets from chromStart in increasing order",
        )
    return blocks
