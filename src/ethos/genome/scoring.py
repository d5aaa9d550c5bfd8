"""Off-target scores of single sites (CFD, MIT) and the specificity of a guide.

Scores estimate how strongly Cas9 loaded with a guide cuts a mismatched site, relative to the
intended site. Two conventions (``convention=``) differ where the published formulas are silent:

- ``"ethos"``: an unknown off-target base (N) is possibly matching: an N position takes the
  highest activity any real base could give, so a score with N is an upper bound on cutting,
  the safe direction for an ethics review. No PAM factor on MIT.
- ``"crispor"``: as CRISPOR (Haeussler et al., Genome Biol 17:148, 2016; crispor.py in
  github.com/maximilianh/crisporWebsite, read at commit 49b5f1e): an N in the off-target is a
  mismatch for MIT, and CFD is not computed for an off-target with N (CRISPOR's CFD function
  returns -1 and the site is left out of the CFD sum); an SpCas9 off-target whose PAM does not
  end in GG (NAG, NGA...) has its MIT score multiplied by 0.2 (:func:`mit_pam_factor`),
  CRISPOR's heuristic that alternative PAMs account for about 10 % of GUIDE-seq cleavage.

:func:`default_convention` picks ``"crispor"`` for relaxed PAM searches (any pattern but NGG,
where non-GG sites appear) and ``"ethos"`` for NGG.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import numpy as np

from ethos.genome.alphabet import BASES, PamPattern, as_pam, reverse_complement
from ethos.genome.cfd_tables import cfd_mismatch_table, cfd_pam_table
from ethos.genome.errors import GenomeError

#: Hsu et al., Nat Biotechnol 31:827 (2013): mismatch weight at positions 1..20 (1 = PAM-distal).
MIT_WEIGHTS = np.array(
    [0, 0, 0.014, 0, 0, 0.395, 0.317, 0, 0.389, 0.079,
     0.445, 0.508, 0.613, 0.851, 0.732, 0.828, 0.615, 0.804, 0.685, 0.583]
)  # fmt: skip

GUIDE_LENGTH = 20
CFD_LENGTH = 23

Convention = Literal["crispor", "ethos"]
CONVENTIONS: tuple[Convention, ...] = ("crispor", "ethos")
#: CRISPOR's factor on the MIT score of an SpCas9 off-target whose PAM does not end in GG.
NON_GG_MIT_FACTOR = 0.2


def check_convention(convention: str) -> Convention:
    """``convention`` if it is one of :data:`CONVENTIONS`, else a :class:`GenomeError`."""
    if convention not in CONVENTIONS:
        raise GenomeError(
            f"scoring convention {convention!r} is not one of {', '.join(CONVENTIONS)}",
            hint="'crispor': N is a mismatch and non-GG PAMs get MIT x 0.2 (as CRISPOR); "
            "'ethos': N scores as the most active base (an upper bound)",
        )
    return convention


def default_convention(pam: str | PamPattern) -> Convention:
    """``"ethos"`` for an NGG search, ``"crispor"`` for any other PAM (e.g. relaxed NRG).

    Under NGG every site ends in GG, so the conventions differ only on N; a relaxed search also
    finds NAG-like sites, which CRISPOR down-weights, so its numbers are the comparable ones.
    """
    return "ethos" if as_pam(pam).pattern == "NGG" else "crispor"


def mit_pam_factor(offtarget_pam: str, *, convention: Convention = "ethos") -> float:
    """Factor on the MIT score for the site's PAM: 0.2 under ``"crispor"`` when a 3-nt
    (SpCas9) PAM does not end in GG, else 1. MIT itself ignores the PAM (Hsu et al., 2013).

    CRISPOR applies it to off-targets of NGG guides found with an alternative PAM; other
    nucleases (longer PAMs, e.g. SaCas9's NNGRRT) are left at 1.
    """
    pam = offtarget_pam.strip().upper()
    if check_convention(convention) == "crispor" and len(pam) == 3 and pam[1:] != "GG":
        return NON_GG_MIT_FACTOR
    return 1.0


def _clean(seq: str, *, what: str, length: int, allowed: str) -> str:
    if not isinstance(seq, str):
        raise GenomeError(f"{what} must be a string of bases, got {type(seq).__name__}")
    s = seq.strip().upper().replace("U", "T")
    if len(s) != length:
        raise GenomeError(
            f"{what} {seq!r} has {len(s)} bases; expected {length}",
            hint="CFD takes 20-nt protospacer + 3-nt PAM (23-mers); MIT takes the 20-nt "
            "protospacers only",
        )
    for i, ch in enumerate(s):
        if ch not in allowed:
            raise GenomeError(
                f"{what} {seq!r} has character {seq.strip()[i]!r} at position {i + 1}; "
                f"allowed here: {', '.join(allowed)}",
            )
    return s


def cfd_score(guide_23mer: str, offtarget_23mer: str, *, convention: Convention = "ethos") -> float:
    """Cutting Frequency Determination score of one off-target (Doench et al., 2016), in 0..1.

    ``CFD = prod_{i mismatched} mismatch[i, rna(guide_i), revcomp(off_i)] * pam[off_22 off_23]``

    where ``rna`` writes T as U and positions count from 1 at the PAM-distal end. The guide's own
    PAM bases (21..23) are ignored; only the off-target's last two bases enter, through the PAM
    table. Tables: Doench et al., Nat Biotechnol 34:184 (2016), Supplementary Table 19.
    An N in the off-target: ``"ethos"`` takes the most active base (upper bound); ``"crispor"``
    returns NaN, CRISPOR's "not scored" (the site then stays out of the CFD specificity sum).
    """
    conv = check_convention(convention)
    guide = _clean(guide_23mer, what="guide", length=CFD_LENGTH, allowed="ACGTN")
    off = _clean(offtarget_23mer, what="off-target", length=CFD_LENGTH, allowed="ACGTN")
    if "N" in guide[:GUIDE_LENGTH]:
        i = guide.index("N")
        raise GenomeError(
            f"guide {guide_23mer!r} has N at position {i + 1}; the 20-nt protospacer of a guide "
            "must be A, C, G or T (N is allowed only in its PAM)"
        )
    if conv == "crispor" and "N" in off:
        return math.nan
    mismatch, pam = cfd_mismatch_table(), cfd_pam_table()
    score = 1.0
    for i, (g, o) in enumerate(zip(guide[:GUIDE_LENGTH], off[:GUIDE_LENGTH], strict=True)):
        rna = "U" if g == "T" else g
        options = BASES if o == "N" else o
        score *= max(
            1.0 if b == g else mismatch[(i + 1, rna, reverse_complement(b))] for b in options
        )
    last2 = off[21:]
    score *= max(pam[a + b] for a in _options(last2[0]) for b in _options(last2[1]))
    return score


def _options(base: str) -> str:
    return BASES if base == "N" else base


def mit_score(guide_20mer: str, offtarget_20mer: str, *, convention: Convention = "ethos") -> float:
    """MIT (Hsu et al., 2013) score of one off-target, 0..100 (100 = as good as the target).

    ``S = 100 * prod_{i mismatched}(1 - M_i) * 1 / ((19 - d) / 19 * 4 + 1) * 1 / n^2``

    with ``M`` = :data:`MIT_WEIGHTS`, ``n`` mismatches and ``d`` their mean pairwise distance,
    computed as the crispr.mit.edu server did (and CRISPOR reproduces): the mean gap between
    consecutive mismatches, ``(last - first) / (n - 1)``; the distance term is 1 for ``n < 2``
    and the ``1 / n^2`` term is 1 for ``n = 0``. An N in the off-target counts as a match under
    ``"ethos"`` (upper bound) and as a mismatch under ``"crispor"`` (see the module docstring).
    The PAM factor is separate: :func:`mit_pam_factor`.
    """
    conv = check_convention(convention)
    guide = _clean(guide_20mer, what="guide", length=GUIDE_LENGTH, allowed="ACGT")
    off = _clean(offtarget_20mer, what="off-target", length=GUIDE_LENGTH, allowed="ACGTN")
    n_matches = conv == "ethos"
    positions = [
        i
        for i, (g, o) in enumerate(zip(guide, off, strict=True))
        if o != g and not (n_matches and o == "N")
    ]
    n = len(positions)
    if n == 0:
        return 100.0
    position_term = float(np.prod(1.0 - MIT_WEIGHTS[positions]))
    if n < 2:
        distance_term = 1.0
    else:
        mean_distance = (positions[-1] - positions[0]) / (n - 1)
        distance_term = 1.0 / ((19.0 - mean_distance) / 19.0 * 4.0 + 1.0)
    return 100.0 * position_term * distance_term / n**2


def guide_specificity(offtarget_scores_pct: Iterable[float]) -> float:
    """Aggregate specificity of a guide, in (0, 1]: ``100 / (100 + sum of off-target scores)``.

    Scores are on a 0..100 scale (MIT as is, CFD times 100) and exclude the intended site. This
    is the aggregation of Hsu et al. (2013) as used by crispr.mit.edu and CRISPOR (Haeussler et
    al., Genome Biol 17:148, 2016); 1 means no scored off-targets.
    """
    total = 0.0
    for s in offtarget_scores_pct:
        if not 0.0 <= s <= 100.0 or s != s:
            raise GenomeError(f"off-target score {s} is outside 0..100")
        total += s
    return 100.0 / (100.0 + total)
