"""`ethos serve RUN_DIR`: check the run may be served, then start uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ethos.errors import EthosError

if TYPE_CHECKING:
    from ethos.serving.quantize import VariantReport


def serve_command(
    run_dir: Path = typer.Argument(
        ..., metavar="RUN_DIR", help="A gated run (PASS, or an approved REVIEW)."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(8000, help="TCP port."),
    db: str | None = typer.Option(
        None,
        "--db",
        help="Serving database (keys, masked prediction logs, feedback, alerts): "
        "a path or SQLAlchemy URL. Default: $ETHOS_SERVING_DB, else ~/.ethos/serving.db.",
    ),
    ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL (for --allow-review)."),
    allow_review: bool = typer.Option(
        False,
        "--allow-review",
        help="Serve a REVIEW decision before anyone approved it; recorded in the ledger.",
    ),
    backend: str = typer.Option(
        "torch",
        "--backend",
        help="torch: the model as trained (PyTorch); onnx: its graph on ONNX Runtime, exported "
        "once and cached in the run's exports/onnx/ (faster on CPUs).",
    ),
    quantize: str = typer.Option(
        "none",
        "--quantize",
        help="int8: dynamic int8 weights (PyTorch Linear layers, or ONNX Runtime MatMuls).",
    ),
    max_accuracy_drop: float = typer.Option(
        1.0,
        "--max-accuracy-drop",
        min=0.0,
        max=100.0,
        help="Any variant but --backend torch --quantize none is compared with the float model "
        "on the run's test part at start-up (shown in GET /v1/model and the model card); it is "
        "refused if it loses more accuracy points than this.",
    ),
    onnx_threads: int | None = typer.Option(
        None,
        "--onnx-threads",
        min=1,
        help="ONNX Runtime threads per server process. Default: usable cores / --workers.",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Server processes (each loads the model; rate limits and monitors are per process).",
    ),
    max_batch: int = typer.Option(32, "--max-batch", help="Inputs per forward pass at most."),
    max_prompts: int = typer.Option(
        16,
        "--max-prompts",
        min=1,
        max=1024,
        help="Prompts in one POST /v1/generate request at most (causal_lm runs; 413 beyond).",
    ),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="How long a batch waits to fill."),
    timeout: float = typer.Option(
        30.0, "--timeout", help="Seconds a request may take (504 beyond)."
    ),
    keep_inputs: bool = typer.Option(
        False,
        "--keep-inputs",
        help="Keep the PII-masked text of each prediction (never the raw text) so that "
        "`ethos retrain --feedback DB` can learn from labelled feedback. Off by default: the log "
        "then holds only hashes.",
    ),
    knowledge_base: Path | None = typer.Option(
        None,
        "--knowledge-base",
        metavar="KB_DIR",
        help="A grounded run's knowledge base, when it is no longer where training recorded it. "
        "It must still be the one the run recorded (its kb_sha256): any other is refused. "
        "Only for grounded runs.",
    ),
) -> None:
    """Serve a gated run over HTTP: /v1/predict, /v1/explain, /v1/feedback, /v1/model,
    /v1/alerts, /dashboard, /metrics, /healthz, /readyz (OpenAPI at /docs). A causal_lm run
    answers POST /v1/generate instead of predict, explain and feedback; its responses are
    always PII-masked. A grounded run also answers POST /v1/answer from the knowledge base
    it recorded, and is refused when that knowledge base changed.

    A FAIL is refused; a REVIEW needs `ethos approve` or --allow-review. Every endpoint except
    the health checks and /metrics needs an API key: create one with `ethos keys create`.
    """
    import os

    import uvicorn

    from ethos.rundir import RunDir
    from ethos.serving.admission import admit
    from ethos.serving.answerer import ServedAnswerer, is_grounded
    from ethos.serving.app import create_app
    from ethos.serving.model import load_served_model
    from ethos.serving.settings import SETTINGS_ENV, ServeSettings

    if backend not in ("torch", "onnx"):
        raise EthosError(f"--backend {backend!r} is not known", hint="use torch or onnx")
    if quantize not in ("none", "int8"):
        raise EthosError(f"--quantize {quantize!r} is not known", hint="use none or int8")
    settings = ServeSettings(
        run_dir=run_dir.resolve(),
        db_url=db,
        ledger_url=ledger,
        knowledge_base=None if knowledge_base is None else knowledge_base.expanduser().resolve(),
        allow_review=allow_review,
        backend=backend,  # type: ignore[arg-type]
        quantize=quantize,  # type: ignore[arg-type]
        max_accuracy_drop=max_accuracy_drop,
        workers=workers,
        onnx_threads=onnx_threads,
        max_batch=max_batch,
        max_prompts=max_prompts,
        max_wait_ms=max_wait_ms,
        request_timeout_s=timeout,
        keep_inputs=keep_inputs,
    )
    # Refuse before binding a port: a FAIL or unapproved REVIEW must never start listening.
    run = RunDir.open(settings.run_dir)
    admitted = admit(run, allow_review=allow_review, ledger_url=ledger)
    if admitted.override_entry:  # recorded once here; the app reuses the entry
        settings = settings.model_copy(update={"review_override_entry": admitted.override_entry})
    typer.echo(
        f"serving {admitted.run_id} ({admitted.decision}"
        + (f", approved by {admitted.approved_by}" if admitted.approved_by else "")
        + (
            f", served under --allow-review (ledger entry {admitted.override_entry[:12]})"
            if admitted.override_entry
            else ""
        )
        + f") on http://{host}:{port}"
    )
    if keep_inputs:
        typer.echo("--keep-inputs: the PII-masked text of each prediction is kept for retraining")
    # A grounded run's knowledge base is checked against the recorded hash before binding the
    # port as well: a changed (or missing) one is refused here, with exit code 2.
    answerer = None
    if settings.knowledge_base is not None or is_grounded(run):
        answerer = ServedAnswerer.load(run, knowledge_base=settings.knowledge_base)
        kb = answerer.knowledge_base()
        typer.echo(
            f"answering POST {answerer.endpoint} from the knowledge base the run recorded "
            f"(kb_sha256 {kb['kb_sha256'][:12]}, {kb['passages']} passages)"
        )
    # Load and check the served variant before binding the port too: a variant that loses too
    # much accuracy is refused here, with exit code 2, not in a worker's start-up log.
    model = load_served_model(settings, run)
    if model.quantization is not None:
        typer.echo(variant_summary(model.quantization))
    if workers == 1:
        uvicorn.run(
            create_app(settings, model=model, answerer=answerer),
            host=host,
            port=port,
            log_level="info",
        )
        return
    check = None if model.quantization is None else model.quantization.to_json()
    settings = settings.model_copy(update={"variant_check": check})
    del model, answerer  # each worker loads its own; this process only supervises them
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    uvicorn.run(
        "ethos.serving.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def variant_summary(report: VariantReport) -> str:
    """One line on how the served variant compares with the float model."""
    name = report.variant.name
    if not report.measured:
        return f"{name}: not compared with the float model ({report.reason})"
    speed = f", {report.speedup:.2f}x the float model's speed" if report.speedup else ""
    return (
        f"{name} on {report.n} test rows: decisions agree {100 * (report.agreement or 0):.1f} %, "
        f"accuracy {report.accuracy_float:.4f} -> {report.accuracy_served:.4f} "
        f"({-(report.accuracy_drop_points or 0.0):+.2f} points, limit "
        f"-{report.max_accuracy_drop:g}), largest probability change "
        f"{report.max_probability_change:.4f}{speed}"
    )
