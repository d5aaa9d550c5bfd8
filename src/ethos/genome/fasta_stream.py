"""Streamed FASTA: a genome larger than memory as a sequence of bounded, overlapping windows.

A multi-gigabase FASTA need not fit in memory to be searched: :func:`iter_windows` reads the
file in blocks through the same parser as :func:`ethos.genome.fasta.read_fasta` (same accepted
files, same error messages) and hands out windows of at most ``window_bp`` bases. Consecutive
windows of a record overlap by ``overlap_bp`` bases; with ``overlap_bp = site_len - 1`` every
site of ``site_len`` bases lies wholly inside exactly one window (the one where it *starts*
before the overlap), so a search over windows finds each site once, none lost at a boundary.
Memory held: one block of the file plus the windows the caller has not yet released.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ethos.genome.errors import GenomeError
from ethos.genome.fasta import DEFAULT_BLOCK_BYTES, fasta_pieces, read_blocks


@dataclass(frozen=True)
class FastaWindow:
    """Bases ``[offset_bp, offset_bp + length_bp)`` of record number ``record_index``."""

    record_index: int
    record: str
    offset_bp: int
    codes: npt.NDArray[np.uint8] = field(repr=False)

    @property
    def length_bp(self) -> int:
        """Number of bases in the window, N included."""
        return int(self.codes.size)


def check_window(window_bp: int, overlap_bp: int) -> None:
    """Refuse windows that cannot advance: each must hold more than the overlap it repeats."""
    if overlap_bp < 0:
        raise GenomeError(f"overlap_bp={overlap_bp} must not be negative")
    if window_bp <= overlap_bp:
        raise GenomeError(
            f"window_bp={window_bp} must be larger than the overlap of {overlap_bp} bp",
            hint="windows are usually millions of bases (default 8,000,000)",
        )


def iter_windows(
    path: str | Path,
    *,
    window_bp: int,
    overlap_bp: int,
    iupac_as_n: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[FastaWindow]:
    """Windows of every record of a FASTA file (plain or gzip), in file order.

    Every record yields at least one window (an empty record an empty one), so record indices
    and names come out complete and in order. A window ends a record's windows when it holds
    bases no earlier window held; the last ``overlap_bp`` bases of a full window start the next.
    Errors (missing file, damaged gzip, bad character, duplicate name...) are those of
    :func:`ethos.genome.fasta.read_fasta`, raised when the stream reaches them.
    """
    check_window(window_bp, overlap_bp)
    if block_bytes < 1:
        raise GenomeError(f"block_bytes={block_bytes} must be positive")
    p = Path(path)
    pieces = fasta_pieces(read_blocks(p, block_bytes=block_bytes), source=p, iupac_as_n=iupac_as_n)
    current = -1
    name = ""
    buf = np.empty(0, dtype=np.uint8)
    fill = offset_bp = 0
    fresh = False  # buf holds bases no window has handed out yet
    emitted = False  # the current record has had a window
    for piece in pieces:
        if piece.record_index != current:
            if current >= 0 and (fresh or not emitted):
                yield FastaWindow(current, name, offset_bp, buf[:fill].copy())
            current, name = piece.record_index, piece.name
            buf = np.empty(window_bp, dtype=np.uint8)
            fill = offset_bp = 0
            fresh = emitted = False
        codes, taken = piece.codes, 0
        while taken < codes.size:
            step = min(window_bp - fill, codes.size - taken)
            buf[fill : fill + step] = codes[taken : taken + step]
            fill, taken, fresh = fill + step, taken + step, True
            if fill == window_bp:
                yield FastaWindow(current, name, offset_bp, buf)
                nxt = np.empty(window_bp, dtype=np.uint8)
                nxt[:overlap_bp] = buf[window_bp - overlap_bp :]
                buf, fill = nxt, overlap_bp
                offset_bp += window_bp - overlap_bp
                fresh, emitted = False, True
    if current >= 0 and (fresh or not emitted):
        yield FastaWindow(current, name, offset_bp, buf[:fill].copy())
