"""A tiny edit case for the gate tests: genome, coding-region BED and request files.

Every genome is two 600-bp random chromosomes with the guide's intended site planted in gene
DEMO1 (chr1:100) and, where a test asks, mismatched copies planted on chr2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ethos.genome import SequenceRecord, write_fasta

GUIDE = "GACCTGTAGCATCGATGCCA"
ON_SITE = GUIDE + "AGG"
NEAR = "TACATGCAG" + GUIDE[9:] + "TGG"  # 3 PAM-distal mismatches: CFD 0.58, MIT 1.7
FAR = GUIDE[:16] + "TGGC" + "TGG"  # 4 PAM-proximal mismatches: CFD 0.0009
NEAR_AT, FAR_AT = 300, 450  # on chr2
GENE_BED = "chr1\t50\t200\tDEMO1\n"


def write_case(
    folder: Path, *, offtargets: dict[int, str] | None = None, bed: str = GENE_BED, **request: Any
) -> Path:
    """Genome, BED and request files in ``folder``; returns the request path."""
    rng = np.random.default_rng(7)
    chromosomes = ["".join(rng.choice(list("ACGT"), 600)) for _ in range(2)]
    chr1 = chromosomes[0][:100] + ON_SITE + chromosomes[0][123:]
    chr2 = list(chromosomes[1])
    for at, site in (offtargets or {}).items():
        chr2[at : at + len(site)] = list(site)
    records = [
        SequenceRecord.from_string("chr1", chr1),
        SequenceRecord.from_string("chr2", "".join(chr2)),
    ]
    write_fasta(records, folder / "genome.fa")
    (folder / "coding.bed").write_text(bed)
    body = {
        "name": "demo1-knockout",
        "cells": "somatic",
        "purpose": "therapy",
        "target_gene": "DEMO1",
        "guide": GUIDE,
        "genome": "genome.fa",
        "coding_regions": "coding.bed",
        **request,
    }
    path = folder / "request.yaml"
    path.write_text(yaml.safe_dump(body))
    return path
