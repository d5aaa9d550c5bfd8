"""Genome-scale off-target search: the FASTA streamed in windows, each window a shard.

:func:`search_offtargets_sharded` returns exactly what
:func:`ethos.genome.offtarget.search_offtargets` returns (same hits, same order) without ever
holding the genome in memory: the file is read in overlapping windows
(:func:`ethos.genome.fasta_stream.iter_windows`, overlap = site length - 1, so a site at a
window boundary is found once), each window is searched by the same
:meth:`~ethos.genome.offtarget.SearchSpec.search_codes`, and the rows are sorted at the end.
The shards run in this process or on Ray (:mod:`.executors`); the code path is otherwise one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ethos.genome.alphabet import PamPattern
from ethos.genome.errors import GenomeError
from ethos.genome.executors import DEFAULT_CONNECT_TIMEOUT_S, open_executor
from ethos.genome.fasta_stream import FastaWindow, iter_windows
from ethos.genome.offtarget import DEFAULT_MAX_MISMATCHES, HitRow, OffTargetHit, SearchSpec

#: Bases per shard: about 8 MB of codes, a few hundred MB of temporaries while searched.
DEFAULT_WINDOW_BP = 8_000_000


@dataclass(frozen=True)
class _SearchWindow:
    """The shard function: a picklable callable, so Ray ships the spec with each window."""

    spec: SearchSpec

    def __call__(self, window: FastaWindow) -> list[HitRow]:
        return self.spec.search_codes(
            window.codes, record_index=window.record_index, offset_bp=window.offset_bp
        )


def _note_names(windows: Iterator[FastaWindow], names: list[str]) -> Iterator[FastaWindow]:
    """Pass windows through, recording each record's name the first time it appears."""
    for window in windows:
        if window.record_index == len(names):
            names.append(window.record)
        yield window


def search_offtargets_sharded(
    fasta: str | Path,
    guides: Sequence[str],
    *,
    pam: str | PamPattern = "NGG",
    max_mismatches: int = DEFAULT_MAX_MISMATCHES,
    guide_length: int = 20,
    window_bp: int = DEFAULT_WINDOW_BP,
    ray_address: str | None = None,
    workers: int = 2,
    iupac_as_n: bool = False,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> list[OffTargetHit]:
    """All sites within ``max_mismatches`` of any guide next to a PAM, searched shard by shard.

    Same contract and output as :func:`ethos.genome.offtarget.search_offtargets` on the same
    file, in memory bounded by ``window_bp`` (times the shards in flight) instead of the genome.
    ``ray_address``: None runs the shards in this process; ``"local"`` starts Ray here with
    ``workers`` CPUs; ``"host:port"`` or ``"ray://host:port"`` uses a running cluster (whose
    workers must be able to import ethos). An address that accepts no connection within
    ``connect_timeout_s`` is a :class:`GenomeError`, as is a window shorter than one site.
    Nothing is returned until every shard has finished: an error leaves no partial result.
    """
    spec = SearchSpec.prepare(
        guides, pam=pam, max_mismatches=max_mismatches, guide_length=guide_length
    )
    if window_bp < spec.site_len:
        raise GenomeError(
            f"window_bp={window_bp} is smaller than one site ({spec.site_len} bp: "
            f"{guide_length}-nt protospacer + {len(spec.pam)}-nt PAM)",
            hint=f"use windows of millions of bases (default {DEFAULT_WINDOW_BP:,})",
        )
    names: list[str] = []
    windows = iter_windows(
        fasta, window_bp=window_bp, overlap_bp=spec.site_len - 1, iupac_as_n=iupac_as_n
    )
    first = next(windows)  # a missing, empty or headless file fails here, before Ray starts
    shards = _note_names(itertools.chain([first], windows), names)
    rows: list[HitRow] = []
    with open_executor(
        ray_address, workers=workers, connect_timeout_s=connect_timeout_s
    ) as executor:
        for shard_rows in executor.map(_SearchWindow(spec), shards):
            rows.extend(shard_rows)
    return spec.to_hits(rows, names)
