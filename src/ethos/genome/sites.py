"""Where a PAM sits: the candidate protospacer sites of a sequence, on either strand.

Positions are 0-based forward-strand coordinates of the leftmost base of the whole site
(protospacer + PAM), the convention of Cas-OFFinder. On the plus strand the site reads
``protospacer + PAM`` left to right; on the minus strand the forward strand shows
``revcomp(PAM) + revcomp(protospacer)``, so both are found without building a reverse-complement
copy of the genome.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from ethos.genome.alphabet import CODE_N, PamPattern

Strand = Literal["+", "-"]
STRANDS: tuple[Strand, Strand] = ("+", "-")
#: Complement of each code (N stays N).
_COMPLEMENT_CODE = np.array([3, 2, 1, 0, CODE_N], dtype=np.intp)


def pam_sites(
    codes: npt.NDArray[np.uint8],
    pam: PamPattern,
    guide_length: int,
    strand: Strand,
    *,
    start: int = 0,
    stop: int | None = None,
) -> npt.NDArray[np.int64]:
    """Leftmost positions ``p`` in ``[start, stop)`` whose site has a PAM matching ``pam``.

    Positions that allow all four bases (``N``) only need a known base, so they are checked on
    the few survivors of the selective positions instead of on the whole sequence.
    """
    site_len = guide_length + len(pam)
    last = codes.size - site_len + 1
    stop = last if stop is None else min(stop, last)
    if stop <= start:
        return np.zeros(0, dtype=np.int64)
    n = stop - start
    mask: npt.NDArray[np.bool_] | None = None
    permissive: list[int] = []
    for j in range(len(pam)):
        allowed = pam.allowed[j]
        if strand == "+":
            offset = guide_length + j
        else:
            offset = len(pam) - 1 - j
            allowed = allowed[_COMPLEMENT_CODE]
        if allowed[:4].all():
            permissive.append(offset)
            continue
        window = codes[start + offset : start + offset + n]
        ok = allowed[window]
        mask = ok if mask is None else (mask & ok)
    if mask is None:
        positions = np.arange(start, stop, dtype=np.int64)
    else:
        positions = np.flatnonzero(mask).astype(np.int64) + start
    for offset in permissive:
        positions = positions[codes[positions + offset] != CODE_N]
    return positions
