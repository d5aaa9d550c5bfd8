"""sha256 of a file's bytes, read in blocks: the one way ethos records exactly which file it read.

Shared by the data layer (source files), checkpoints (integrity of each saved file) and the
genome review (the genome and annotation a decision was made on), which must not import each
other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of the file at ``path``; 1 MiB blocks keep a large genome out of memory."""
    return files_sha256([Path(path)])


def files_sha256(paths: Iterable[Path]) -> str:
    """Hex sha256 of the files' bytes one after another, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def weights_sha256(model_dir: Path, patterns: Sequence[str] = ("*.safetensors",)) -> str:
    """The weights of a model folder as one hash: its weight files, sorted by name, in a row
    (a run's manifest, and the language-model audit, which also reads ``*.bin`` folders)."""
    return files_sha256(sorted(path for pattern in patterns for path in model_dir.glob(pattern)))
