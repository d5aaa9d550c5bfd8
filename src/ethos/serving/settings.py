"""What `ethos serve` was asked to do, as one validated object (also passed to worker processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

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
    knowledge_base: Path | None = None
    """Where a grounded run's knowledge base is now, when it moved since training (still
    checked against the kb_sha256 the run recorded); None: where the run recorded it."""
    allow_review: bool = False
    review_override_entry: str | None = None
    """Set by the CLI once it has recorded ``--allow-review`` in the ledger."""
    backend: Literal["torch", "onnx"] = "torch"
    """torch: the model as trained (PyTorch eager); onnx: its graph on ONNX Runtime, exported
    once and cached in the run (``exports/onnx/``)."""
    quantize: Literal["none", "int8"] = "none"
    """int8: dynamic int8 weights (PyTorch Linear layers, or ONNX Runtime MatMuls)."""
    max_accuracy_drop: Annotated[float, Field(ge=0, le=100)] = 1.0
    """Accuracy points on the run's test part a variant (anything but torch float32) may lose
    against the float model; beyond it the server refuses to start."""
    workers: Annotated[int, Field(ge=1)] = 1
    """Server processes: ONNX Runtime's threads per process are the cores divided by this."""
    onnx_threads: Annotated[int, Field(ge=1)] | None = None
    """ONNX Runtime intra-op threads per process; None: usable cores // workers (at least 1)."""
    max_batch: Annotated[int, Field(ge=1, le=1024)] = 32
    """Inputs that share one forward pass at most."""
    max_wait_ms: Annotated[float, Field(ge=0, le=1000)] = 5.0
    """How long the first input of a batch waits for company: the latency paid for throughput."""
    max_queue: Annotated[int, Field(ge=1)] = 2048
    """Inputs waiting for the model at most; beyond it requests get 503 with Retry-After."""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 2_000_000
    max_inputs: Annotated[int, Field(ge=1)] = 256
    """Inputs in one request at most (413 beyond)."""
    max_prompts: Annotated[int, Field(ge=1, le=1024)] = 16
    """Prompts in one ``POST /v1/generate`` request at most (413 beyond): a causal LM generates
    token by token, so a prompt costs far more than a classifier's input."""
    request_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    keep_inputs: bool = False
    """Store each prediction's PII-masked text (never the raw one) beside its hash, so that
    `ethos retrain --feedback DB` can learn from labelled feedback; off, only hashes are kept."""
    measure_quantization: bool = True
    """Compare the served variant with the float model on the run's test part at start-up
    (seconds); off, the variant is served unchecked and ``/v1/model`` says so."""
    variant_check: dict[str, Any] | None = None
    """Set by the CLI once it has checked the variant: worker processes show this measurement
    (when it is of the very variant and ONNX file they load) instead of repeating it."""
