"""The run directory: the hand-off between training and every later stage.

Everything a later command needs is in it: ``model/`` (Hugging Face format, tokenizer included),
``config.yaml`` (resolved), ``manifest.json`` (fingerprints, hashes, versions, seed, timing),
``metrics.json`` and ``predictions.parquet``. ``manifest.json`` is written last, so a folder with a
manifest is a finished run; one without is a run in progress or a killed one (see
``ethos train --resume``).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ethos.config import RunConfig
from ethos.errors import EthosError
from ethos.hashing import file_sha256

MANIFEST = "manifest.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.parquet"
CONFIG = "config.yaml"
MODEL = "model"
AUDIT_JSON = Path("audit") / "audit.json"
DECISION = "decision.json"
ADVISORY_DECISION = "decision.advisory.json"
APPROVAL = "approval.json"


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``final`` only if the block finishes."""
    if final.exists():
        raise EthosError(f"{final} already exists", hint="choose another output directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def atomic_write_text(target: Path, text: str) -> None:
    """Write ``text`` to a uniquely named temporary file beside ``target``, then rename it, so a
    reader sees the old file or the new one, never half of one."""
    staged = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)


def file_sha256_or_none(path: Path) -> str | None:
    """sha256 of ``path``, or None when it does not exist (a run not yet audited)."""
    return file_sha256(path) if path.is_file() else None


def write_json(path: Path, payload: Any) -> None:
    """JSON with NaN refused: downstream tools (and auditors) read these files."""
    path.write_text(json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n")


@dataclass(frozen=True)
class RunDir:
    """A finished run on disk, read lazily."""

    path: Path

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        path = Path(path)
        if not (path / MANIFEST).is_file():
            if (path / CONFIG).is_file():
                raise EthosError(
                    f"{path} is an unfinished run (no {MANIFEST} yet): it is still training or "
                    "was interrupted",
                    hint=f"continue it with: ethos train --resume {path}",
                )
            raise EthosError(
                f"{path} is not an ethos run directory (no {MANIFEST})",
                hint="pass the folder `ethos train` printed at the end",
            )
        return cls(path)

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.path / MANIFEST).read_text()))

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(json.loads((self.path / METRICS).read_text()))

    @property
    def config(self) -> RunConfig:
        """The resolved config the run was trained with."""
        return RunConfig.model_validate(yaml.safe_load((self.path / CONFIG).read_text()))

    def identity(self) -> dict[str, Any]:
        """The fields every ledger entry about this run carries: what exactly was judged."""
        manifest = self.manifest
        return {
            "run_id": str(manifest.get("run_id")),
            "dataset_fingerprint": (manifest.get("data") or {}).get("fingerprint"),
            "config_hash": manifest.get("config_hash"),
            "model_hash": (manifest.get("model") or {}).get("weights_sha256"),
        }

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    def predictions(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / PREDICTIONS)

    def __repr__(self) -> str:
        manifest = self.manifest
        test = self.metrics.get("test", {})
        auroc = test.get("auroc")
        shown = f", AUROC {auroc:.3f}" if auroc is not None else ""
        return (
            f"<RunDir {manifest['run_id']} at {self.path}>\n"
            f"  data: {manifest['data']['name']} ({manifest['data']['rows']} rows, "
            f"fingerprint {manifest['data']['fingerprint'][:12]})\n"
            f"  model: {manifest['model']['name']}, "
            f"{manifest['training']['optimizer_steps']} optimizer steps\n"
            f"  test: accuracy {test.get('accuracy', float('nan')):.3f}, "
            f"macro-F1 {test.get('macro_f1', float('nan')):.3f}{shown}"
        )
