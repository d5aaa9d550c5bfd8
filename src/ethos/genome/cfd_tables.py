"""Load the vendored CFD tables (Doench et al. 2016) once, as plain dicts.

See ``data/PROVENANCE.md`` for source, licence and the table convention.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

#: ``(position 1..20, rna_base in ACGU, dna_base in ACGT) -> score``
MismatchTable = dict[tuple[int, str, str], float]


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files("ethos.genome").joinpath("data").joinpath(filename).read_text("ascii")
    return list(csv.DictReader(text.splitlines()))


@cache
def cfd_mismatch_table() -> MismatchTable:
    """Single-mismatch activity by position, guide RNA base and DNA base of the off-target."""
    return {
        (int(r["position"]), r["rna_base"], r["dna_base"]): float(r["score"])
        for r in _rows("cfd_mismatch.csv")
    }


@cache
def cfd_pam_table() -> dict[str, float]:
    """Activity by the last two bases of the off-target 23-mer (``GG`` = 1)."""
    return {r["pam_last2"]: float(r["score"]) for r in _rows("cfd_pam.csv")}
