"""sha256 of a file's bytes, read in blocks: the one way ethos records exactly which file it read.

Shared by the data layer (source files), checkpoints (integrity of each saved file) and the
genome review (the genome and annotation a decision was made on), which must not import each
other.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of the file at ``path``; 1 MiB blocks keep a large genome out of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
