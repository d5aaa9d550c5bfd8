"""What `ethos serve` was asked to do, as one validated object (also passed to worker processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SETTINGS_ENV = "ETHOS_SERVE_SETTINGS"
"""Worker processes (``--workers N``) are started by uvicorn from an import string, so the
settings travel to them as JSON in this environment variable."""


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_dir: Path
    db_url: str | None = None
    """The serving database; None: ``$ETHOS_SERVING_DB``, else ``~/.ethos/serving.db`` (where
    `ethos keys` puts keys too)."""
    ledger_url: str | None = None
    allow_review: bool = False
    review_override_entry: str | None = None
    """Set by the CLI once it has recorded ``--allow-review`` in the ledger."""
    quantize: Literal["none", "int8"] = "none"
    max_batch: Annotated[int, Field(ge=1, le=1024)] = 32
    """Inputs that share one forward pass at most."""
    max_wait_ms: Annotated[float, Field(ge=0, le=1000)] = 5.0
    """How long the first input of a batch waits for company: the latency paid for throughput."""
    max_queue: Annotated[int, Field(ge=1)] = 2048
    """Inputs waiting for the model at most; beyond it requests get 503 with Retry-After."""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 2_000_000
    max_inputs: Annotated[int, Field(ge=1)] = 256
    """Inputs in one request at most (413 beyond)."""
    request_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    measure_quantization: bool = True
    """Measure int8's accuracy change on the run's test part at start-up (seconds)."""
