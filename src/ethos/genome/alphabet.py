"""Nucleotide codes, IUPAC patterns and the small lookup tables every other module shares.

Bases are stored as ``uint8`` codes ``A=0, C=1, G=2, T=3, N=4`` so that the complement of a real
base is ``3 - code`` and two bits hold it (see :mod:`ethos.genome.encoding`). ``N`` (an unknown
base) never matches anything: not a guide base, not a PAM position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ethos.genome.errors import GenomeError

BASES = "ACGT"
CODE_N = 4
#: Code → letter, for decoding.
LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)

#: IUPAC nucleotide codes (Cornish-Bowden, Nucleic Acids Res. 13:3021, 1985) → bases they allow.
IUPAC: dict[str, str] = {
    "A": "A",
    "C": "C",
    "G": "G",
    "T": "T",
    "U": "T",
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}

_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")

#: Byte → code lookup; 255 marks a byte that is not a nucleotide letter we accept.
INVALID = 255
BYTE_TO_CODE = np.full(256, INVALID, dtype=np.uint8)
for _code, _letter in enumerate("ACGTN"):
    BYTE_TO_CODE[ord(_letter)] = _code
    BYTE_TO_CODE[ord(_letter.lower())] = _code


def reverse_complement(seq: str) -> str:
    """Reverse complement of an ``ACGTN`` string (case kept)."""
    return seq.translate(_COMPLEMENT)[::-1]


def encode(seq: str, *, what: str = "sequence") -> npt.NDArray[np.uint8]:
    """Encode an ``ACGTN`` string (any case) as codes; ``what`` names it in the error message."""
    raw = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)
    codes = BYTE_TO_CODE[raw]
    bad = np.flatnonzero(codes == INVALID)
    if bad.size:
        i = int(bad[0])
        raise GenomeError(
            f"{what} {seq!r} has character {seq[i]!r} at position {i + 1}; "
            "only A, C, G, T and N are allowed",
            hint="write the sequence with A, C, G, T (N for an unknown base)",
        )
    return codes


def decode(codes: npt.NDArray[np.uint8]) -> str:
    """Codes back to an upper-case ``ACGTN`` string."""
    return LETTERS[codes].tobytes().decode("ascii")


def validate_guide(guide: str, *, length: int, what: str = "guide") -> str:
    """Upper-case ``guide`` and check it is ``length`` bases of A, C, G, T.

    A guide is an RNA sequence designed by the user; an ``N`` in it is a mistake, not an unknown.
    """
    if not isinstance(guide, str):
        raise GenomeError(f"{what} must be a string of bases, got {type(guide).__name__}")
    g = guide.strip().upper()
    if len(g) != length:
        raise GenomeError(
            f"{what} {guide!r} has {len(g)} bases; expected {length}",
            hint=f"give the {length}-nt protospacer without the PAM"
            if len(g) > length
            else f"give all {length} bases of the protospacer",
        )
    for i, ch in enumerate(g):
        if ch not in BASES:
            raise GenomeError(
                f"{what} {guide!r} has character {guide.strip()[i]!r} at position {i + 1}; "
                "a guide may contain only A, C, G, T",
                hint="remove spaces or ambiguity codes; write U as T",
            )
    return g


@dataclass(frozen=True)
class PamPattern:
    """A 3' PAM written in IUPAC codes, e.g. ``NGG`` (SpCas9), ``NRG``, ``NNGRRT`` (SaCas9).

    ``allowed[j, code]`` says whether genome base ``code`` satisfies PAM position ``j``; the ``N``
    column is always False because an unknown genome base never satisfies a PAM.
    """

    pattern: str
    allowed: npt.NDArray[np.bool_] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, pattern: str) -> PamPattern:
        """Parse an IUPAC PAM string; unknown codes raise :class:`GenomeError`."""
        p = pattern.strip().upper()
        if not p:
            raise GenomeError("PAM pattern is empty", hint="use e.g. NGG for SpCas9")
        allowed = np.zeros((len(p), 5), dtype=bool)
        for j, ch in enumerate(p):
            if ch not in IUPAC:
                raise GenomeError(
                    f"PAM pattern {pattern!r} has unknown IUPAC code {ch!r} at position {j + 1}",
                    hint="use A C G T R Y S W K M B D H V N (e.g. NGG, NRG, NNGRRT)",
                )
            for base in IUPAC[ch]:
                allowed[j, BASES.index(base)] = True
        return cls(pattern=p, allowed=allowed)

    def __len__(self) -> int:
        return len(self.pattern)

    def matches(self, site: str) -> bool:
        """Whether the string ``site`` (length of the PAM, genome orientation of the guide) fits."""
        return len(site) == len(self.pattern) and all(
            ch in IUPAC[p] and ch != "N" for ch, p in zip(site.upper(), self.pattern, strict=True)
        )


def as_pam(pam: str | PamPattern) -> PamPattern:
    """Accept either a pattern string or an already parsed :class:`PamPattern`."""
    return pam if isinstance(pam, PamPattern) else PamPattern.parse(pam)
