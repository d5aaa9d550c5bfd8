"""What a task-specific fit hands back to the run directory writer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ethos.training.checkpoint import Checkpoint
from ethos.training.loop import LoopResult

DataGuard = Callable[[str], None]
"""Called with the data fingerprint once the data are loaded (a resumed run checks it)."""


@dataclass
class FitRequest:
    """Where a fit may keep checkpoints, what it resumes from, and how loud it is."""

    checkpoint_dir: Path | None = None
    resume_from: Checkpoint | None = None
    data_guard: DataGuard | None = None
    quiet: bool = False


@dataclass
class Fitted:
    """A trained model with its tokenizer, loop record, metrics and held-out predictions."""

    model: Any
    tokenizer: Any
    loop: LoopResult
    metrics: dict[str, Any]
    predictions: pd.DataFrame
    data_summary: dict[str, Any]
    extra_manifest: dict[str, Any] = field(default_factory=dict)
    group_thresholds: Any = None
    """Per-group decision thresholds (fairness post-processing), saved beside the model."""
    canaries: Any = None
    """The privacy audit's canaries (:class:`ethos.data.canaries.Canaries`), saved beside the
    model as canaries.json; None for a run trained without."""
