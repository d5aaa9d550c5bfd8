"""2-bit encoding: compact storage of sequences and 64-bit packed k-mers for fast comparison.

Two bits per base (``A=00 C=01 G=10 T=11``) is the layout of UCSC's .2bit format; unknown bases
are kept apart as N blocks. A k-mer of up to 32 bases packs into one ``uint64``, so comparing a
guide with millions of sites is an XOR and a popcount per site (see :func:`mismatch_counts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ethos.genome.alphabet import CODE_N
from ethos.genome.errors import GenomeError

MAX_KMER = 32
#: Low bit of every 2-bit slot, for up to 32 slots.
_LOW_BITS = np.uint64(0x5555_5555_5555_5555)

U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class TwoBitSequence:
    """A sequence at four bases per byte plus the half-open ``[start, end)`` runs of N."""

    packed: npt.NDArray[np.uint8] = field(repr=False)
    length_bp: int
    n_blocks: npt.NDArray[np.int64] = field(repr=False)

    @classmethod
    def from_codes(cls, codes: npt.NDArray[np.uint8]) -> TwoBitSequence:
        """Pack codes ``0..4``; N is stored as A in the bits and remembered in ``n_blocks``."""
        is_n = codes == CODE_N
        two = np.where(is_n, 0, codes).astype(np.uint8)
        pad = (-two.size) % 4
        quads = np.concatenate([two, np.zeros(pad, np.uint8)]).reshape(-1, 4)
        packed = (quads[:, 0] << 6) | (quads[:, 1] << 4) | (quads[:, 2] << 2) | quads[:, 3]
        edges = np.diff(np.concatenate([[0], is_n.view(np.int8), [0]]))
        blocks = np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)
        return cls(packed=packed.astype(np.uint8), length_bp=int(codes.size), n_blocks=blocks)

    def to_codes(self) -> npt.NDArray[np.uint8]:
        """Unpack to codes ``0..4`` (exact inverse of :meth:`from_codes`)."""
        shifts = np.array([6, 4, 2, 0], dtype=np.uint8)
        codes = ((self.packed[:, None] >> shifts) & 3).astype(np.uint8).ravel()[: self.length_bp]
        for start, end in self.n_blocks:
            codes[start:end] = CODE_N
        return codes

    @property
    def nbytes(self) -> int:
        """Memory held, in bytes (about a quarter of one byte per base)."""
        return int(self.packed.nbytes + self.n_blocks.nbytes)


def pack_kmer(codes: npt.NDArray[np.uint8]) -> int:
    """Pack one k-mer of codes ``0..3`` into an int, first base in the highest bits."""
    value = 0
    for c in codes.tolist():
        value = (value << 2) | int(c)
    return value


def pack_kmers(
    two_bit: npt.NDArray[np.uint8],
    is_n: npt.NDArray[np.bool_],
    starts: npt.NDArray[np.int64],
    k: int,
    *,
    reverse_complement: bool = False,
) -> tuple[U64, U64]:
    """Pack the k-mers starting at ``starts`` into ``uint64`` values and N masks.

    ``two_bit`` holds codes ``0..3`` (N written as 0) and ``is_n`` marks the N positions. With
    ``reverse_complement`` the k-mer is read on the minus strand (``starts`` is still its
    leftmost forward coordinate). The N mask has the low bit of slot ``i`` set when base ``i``
    is N, so OR-ing it into the mismatch bits makes N mismatch everything.
    """
    if not 1 <= k <= MAX_KMER:
        raise GenomeError(f"k-mer length {k} is outside 1..{MAX_KMER}")
    values = np.zeros(starts.size, dtype=np.uint64)
    nmask = np.zeros(starts.size, dtype=np.uint64)
    for i in range(k):
        offset = k - 1 - i if reverse_complement else i
        idx = starts + offset
        base = two_bit[idx]
        if reverse_complement:
            base = 3 - base
        shift = np.uint64(2 * (k - 1 - i))
        values |= base.astype(np.uint64) << shift
        nmask |= is_n[idx].astype(np.uint64) << shift
    return values, nmask


def mismatch_counts(sites: U64, site_n_mask: U64, guide: int, k: int) -> npt.NDArray[np.uint8]:
    """Mismatches between each packed site and a packed guide of length ``k``.

    A slot differs when either of its two bits differs: ``(x | x >> 1) & 0b0101...``; N slots
    are forced to differ; the count is a popcount.
    """
    x = sites ^ np.uint64(guide)
    low = _LOW_BITS & np.uint64((1 << (2 * k)) - 1)
    diff = ((x | (x >> np.uint64(1))) & low) | site_n_mask
    return np.bitwise_count(diff).astype(np.uint8)
