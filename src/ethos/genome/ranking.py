"""Rank guides by specificity: search each guide's off-targets, score them, aggregate.

The result, :class:`GuideReport`, is a plain value object holding the hits and their scores so a
later ethics review (``ethos.governance``) can take it as is: it depends on nothing but this
module's data classes and has :meth:`GuideReport.as_dict` for the ledger.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ethos.genome.alphabet import PamPattern, as_pam
from ethos.genome.fasta import SequenceRecord, read_fasta
from ethos.genome.guides import Guide
from ethos.genome.offtarget import DEFAULT_MAX_MISMATCHES, OffTargetHit, search_offtargets
from ethos.genome.scoring import (
    GUIDE_LENGTH,
    Convention,
    cfd_score,
    check_convention,
    default_convention,
    guide_specificity,
    mit_pam_factor,
    mit_score,
)


@dataclass(frozen=True)
class ScoredHit:
    """An off-target hit with its CFD (0..1) and MIT (0..100) scores; NaN where undefined."""

    hit: OffTargetHit
    cfd: float
    mit: float
    is_on_target: bool


@dataclass(frozen=True)
class GuideReport:
    """One guide, its scored genome hits and its aggregate specificities, in (0, 1].

    ``convention`` is the scoring convention the scores were computed under
    (:mod:`ethos.genome.scoring`: ``"crispor"`` or ``"ethos"``).
    """

    guide: str
    pam: str
    max_mismatches: int
    hits: tuple[ScoredHit, ...] = field(repr=False)
    specificity_cfd: float
    specificity_mit: float
    guide_info: Guide | None = field(default=None, repr=False)
    convention: Convention = "ethos"

    @property
    def offtargets(self) -> tuple[ScoredHit, ...]:
        """Hits other than the intended site."""
        return tuple(h for h in self.hits if not h.is_on_target)

    def mismatch_histogram(self) -> dict[int, int]:
        """Number of off-targets by mismatch count, 0..max_mismatches."""
        counts = Counter(h.hit.mismatches for h in self.offtargets)
        return {m: counts.get(m, 0) for m in range(self.max_mismatches + 1)}

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary plus every off-target row (for a report or a ledger entry)."""
        return {
            "guide": self.guide,
            "pam": self.pam,
            "max_mismatches": self.max_mismatches,
            "convention": self.convention,
            "specificity_cfd": self.specificity_cfd,
            "specificity_mit": self.specificity_mit,
            "offtargets_by_mismatches": self.mismatch_histogram(),
            "offtargets": [
                {**h.hit.as_row(), "cfd": _none_if_nan(h.cfd), "mit": _none_if_nan(h.mit)}
                for h in self.offtargets
            ],
        }


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


def resolve_convention(convention: str | None, pam: str | PamPattern) -> Convention:
    """The convention asked for, or the PAM's default (:func:`.scoring.default_convention`)."""
    return default_convention(pam) if convention is None else check_convention(convention)


def score_hit(
    hit: OffTargetHit, pam: str | PamPattern, *, convention: str | None = None
) -> tuple[float, float]:
    """CFD and MIT of one hit found with ``pam``; CFD needs a 20-nt guide with a 3-nt PAM
    (SpCas9), MIT a 20-nt one (NaN otherwise).

    ``convention`` None takes the PAM's default: ``"crispor"`` for a relaxed search (MIT x 0.2
    for a site not ending in GG, N a mismatch), ``"ethos"`` for NGG (see :mod:`.scoring`).
    """
    pam_pattern = as_pam(pam)
    conv = resolve_convention(convention, pam_pattern)
    site = hit.site.upper()
    guide_len = len(hit.guide)
    cfd = (
        cfd_score(hit.guide + "NGG", site, convention=conv)
        if guide_len == GUIDE_LENGTH and len(pam_pattern) == 3
        else math.nan
    )
    mit = (
        mit_score(hit.guide, site[:guide_len], convention=conv)
        * mit_pam_factor(site[guide_len:], convention=conv)
        if guide_len == GUIDE_LENGTH
        else math.nan
    )
    return cfd, mit


def _specificity(scores_pct: list[float], *, skip_unscored: bool = False) -> float:
    """Specificity over the scores; NaN when any is NaN, unless ``skip_unscored`` leaves those
    out (CRISPOR's CFD sum skips the sites it does not score)."""
    usable = [s for s in scores_pct if not math.isnan(s)]
    if skip_unscored or len(usable) == len(scores_pct):
        return guide_specificity(usable)
    return math.nan


def guide_report(
    guide: str,
    hits: Sequence[OffTargetHit],
    *,
    pam: str | PamPattern,
    max_mismatches: int,
    on_index: int | None,
    guide_info: Guide | None = None,
    convention: str | None = None,
) -> GuideReport:
    """Score one guide's ``hits`` (from :func:`search_offtargets`); ``hits[on_index]`` is the
    intended site (None: every hit is an off-target). ``convention``: see :func:`score_hit`."""
    pam_pattern = as_pam(pam)
    conv = resolve_convention(convention, pam_pattern)
    scored: list[ScoredHit] = []
    for i, h in enumerate(hits):
        cfd, mit = score_hit(h, pam_pattern, convention=conv)
        scored.append(ScoredHit(hit=h, cfd=cfd, mit=mit, is_on_target=i == on_index))
    off = [s for s in scored if not s.is_on_target]
    cfd_defined = len(guide) == GUIDE_LENGTH and len(pam_pattern) == 3
    return GuideReport(
        guide=guide,
        pam=pam_pattern.pattern,
        max_mismatches=max_mismatches,
        hits=tuple(scored),
        specificity_cfd=_specificity(
            [100.0 * s.cfd for s in off], skip_unscored=conv == "crispor" and cfd_defined
        ),
        specificity_mit=_specificity([s.mit for s in off]),
        guide_info=guide_info,
        convention=conv,
    )


def rank_guides(
    guides: Sequence[Guide | str],
    genome: Sequence[SequenceRecord] | str | Path,
    *,
    pam: str | PamPattern = "NGG",
    max_mismatches: int = DEFAULT_MAX_MISMATCHES,
    convention: str | None = None,
) -> list[GuideReport]:
    """Score every guide against ``genome`` and sort by specificity, best first.

    The intended site is the guide's own locus when ``guides`` come from
    :func:`ethos.genome.guides.find_guides` on a record of ``genome``; otherwise (plain strings,
    or a target region read from its own FASTA) it is the first perfect match, which assumes the
    target region comes from this genome. Every other hit, perfect matches included, is an
    off-target.
    Guides are ordered by CFD specificity, then MIT specificity (NaN last). ``convention``
    (``"crispor"``, ``"ethos"``, None for the PAM's default): see :func:`score_hit`.
    """
    records = read_fasta(genome) if isinstance(genome, str | Path) else list(genome)
    pam_pattern = as_pam(pam)
    conv = resolve_convention(convention, pam_pattern)
    sequences = [g.sequence if isinstance(g, Guide) else g for g in guides]
    unique = list(dict.fromkeys(s.strip().upper() for s in sequences))
    hits = search_offtargets(records, unique, pam=pam_pattern, max_mismatches=max_mismatches)
    by_guide: dict[str, list[OffTargetHit]] = {g: [] for g in unique}
    for h in hits:
        by_guide[h.guide].append(h)
    reports = []
    for g in guides:
        info = g if isinstance(g, Guide) else None
        seq = info.sequence if info else str(g).strip().upper()
        own = by_guide[seq]
        locus = (info.chromosome, info.position, info.strand) if info else None
        on_index = next(
            (i for i, h in enumerate(own) if (h.chromosome, h.position, h.strand) == locus),
            next((i for i, h in enumerate(own) if h.mismatches == 0), None),
        )
        reports.append(
            guide_report(
                seq,
                own,
                pam=pam_pattern,
                max_mismatches=max_mismatches,
                on_index=on_index,
                guide_info=info,
                convention=conv,
            )
        )

    def key(r: GuideReport) -> tuple[float, float]:
        def neg(x: float) -> float:
            return math.inf if math.isnan(x) else -x

        return neg(r.specificity_cfd), neg(r.specificity_mit)

    return sorted(reports, key=key)
