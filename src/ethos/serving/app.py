"""The FastAPI application of `ethos serve`: a gated run behind keys, limits, masking and monitors.

Request path of ``POST /v1/predict``: body-size guard (413) → API key (401) and scope (403) →
per-key rate limit (429) → schema (422) → records to text → the micro-batcher (one forward pass
for whatever arrived within a few milliseconds; 503 when its queue is full, 504 on timeout) →
response. Off the request path, the log writer masks PII and stores a hash of the masked text with
the outputs, and the monitor updates its drift windows and alerts.

A ``causal_lm`` run is served by ``POST /v1/generate`` instead (:mod:`ethos.serving.generator`):
the same guards (body size, key and scope ``predict``, rate limit, schema), then one request at
a time through the same batcher's worker thread (``max_batch`` 1: a request's seed decides its
sampling, so requests are never mixed), whose responses are masked for personal data before they
are answered (always: there is no opt-out), and logged as the hashes of the masked prompt and the
masked response (the masked texts too with ``--keep-inputs``). The classifier's endpoints answer
404 on such a run, and ``/v1/generate`` on a classifier's; drift monitoring does not apply to
generation, which ``/v1/alerts`` and ``/dashboard`` say.

A grounded run (a classifier whose manifest records a knowledge base) also answers
``POST /v1/answer`` (:mod:`ethos.serving.answerer`): the same guards, then retrieval, the reader
and abstention off the event loop, one batch of questions at a time; each answer is logged like a
generation (``generation_log``: the hash of the masked question, the answer, and its passage ids
and scores as settings). The knowledge base is checked against the hash the run recorded when
the server loads, and a changed one is refused like any other start-up refusal. On any other run
``/v1/answer`` answers 404 naming the endpoint the run serves.

Every error answers ``{"error": ..., "hint": ..., "detail": ...}`` (:class:`ApiError`): what was
wrong and how to fix it as separate fields, ``detail`` kept for clients of earlier versions.
The documentation pages (``/docs``, ``/redoc``) load nothing from outside the server
(:mod:`ethos.serving.apidocs`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ethos.config import GenerationConfig
from ethos.errors import DataError, EthosError, ModelError
from ethos.rundir import RunDir
from ethos.serving.admission import Admission, admit
from ethos.serving.answerer import ServedAnswerer, is_grounded
from ethos.serving.apidocs import add_offline_docs
from ethos.serving.batching import MicroBatcher, QueueFull
from ethos.serving.cardinfo import CARD_URL, card_summary
from ethos.serving.generator import ServedGenerator
from ethos.serving.logwriter import (
    LogQueueFull,
    LogWriter,
    Masker,
    PendingGeneration,
    PendingLog,
    SerialMasker,
    presidio_masker,
)
from ethos.serving.metrics import ServingMetrics
from ethos.serving.model import ServedModel, load_served_model
from ethos.serving.observe import GENERATION_NOT_MONITORED, DriftFeed, NotMonitored
from ethos.serving.ratelimit import RateLimiter
from ethos.serving.schemas import (
    MAX_SEED,
    AlertOut,
    AlertsResponse,
    AnswerRequest,
    AnswerResponse,
    CardSummary,
    ErrorBody,
    ExplainRequest,
    ExplainResponse,
    FeedbackRequest,
    FeedbackResponse,
    GenerateRequest,
    GenerateResponse,
    GenerationSettings,
    GroundedAnswerOut,
    Health,
    KnowledgeBaseOut,
    ModelInfo,
    MonitorState,
    Prediction,
    PredictRequest,
    PredictResponse,
)
from ethos.serving.settings import SETTINGS_ENV, ServeSettings
from ethos.serving.store import KeyRecord, ServingStore, StoreUnavailable, UnknownPrediction

log = logging.getLogger("ethos.serving")
API_VERSION = "v1"
FEEDBACK_POLL_S = 0.01
"""How often feedback for a prediction still being logged looks again (see ``feedback``)."""
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": what}
    for code, what in (
        (401, "no valid API key"),
        (403, "the key's scopes do not cover this endpoint"),
        (422, "a malformed body, or one the model cannot read"),
        (429, "the key's rate limit; Retry-After says when to try again"),
    )
}
"""The error answers every `/v1` endpoint documents (all ``ErrorBody``)."""


class ApiError(HTTPException):
    """An HTTP error with a hint, answered as ``{"error", "hint", "detail"}``."""

    def __init__(
        self,
        status_code: int,
        error: str,
        *,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, error, headers=headers)
        self.hint = hint

    @classmethod
    def of(cls, status_code: int, exc: EthosError) -> ApiError:
        """From an ethos error, whose message and hint stay apart (``str(exc)`` joins them)."""
        return cls(status_code, exc.message, hint=exc.hint)


def error_body(error: str, hint: str | None, detail: Any = None) -> dict[str, Any]:
    """The JSON of every error answer (see ``ErrorBody``)."""
    return {"error": error, "hint": hint, "detail": error if detail is None else detail}


@dataclass
class _Item:
    """One input on its way through the batcher."""

    text: str
    pair: str | None
    group: str | None
    key: str


@dataclass
class _GenerationJob:
    """One /v1/generate request on its way through the batcher (alone in its batch)."""

    prompts: list[str]
    settings: GenerationConfig
    seed: int


@dataclass(frozen=True)
class _Generated:
    responses: list[str]
    """Masked: what the caller gets and the log keeps."""
    masked: list[bool]
    """Whether masking replaced anything in each response."""


class MaskingFailed(Exception):
    """The responses could not be checked for personal data, so they are not answered."""


@dataclass
class ServingState:
    settings: ServeSettings
    admission: Admission
    model: ServedModel | ServedGenerator
    store: ServingStore
    limiter: RateLimiter
    batcher: MicroBatcher[Any, Any]
    logs: LogWriter
    drift: DriftFeed | NotMonitored
    metrics: ServingMetrics
    run: RunDir
    """Read again for the model card on each request, so a card written later shows up."""
    answerer: ServedAnswerer | None = None
    """A grounded run's answerer (``POST /v1/answer``); None for any other run."""

    def card(self) -> dict[str, Any]:
        """The card summary (files read: call it off the event loop)."""
        return card_summary(self.run, self.admission.decision_id)


def _load_state(
    settings: ServeSettings,
    model: ServedModel | ServedGenerator | None = None,
    answerer: ServedAnswerer | None = None,
) -> ServingState:
    run = RunDir.open(settings.run_dir)
    admission = admit(
        run,
        allow_review=settings.allow_review,
        ledger_url=settings.ledger_url,
        override_entry=settings.review_override_entry,
    )
    if model is None:  # `ethos serve` loads (and checks) it before binding the port
        model = load_served_model(settings, run)
    if isinstance(model, ServedGenerator):
        return _generation_state(settings, run, admission, model)
    if answerer is None and (settings.knowledge_base is not None or is_grounded(run)):
        # A knowledge base that is not the recorded one is refused here (ModelError).
        answerer = ServedAnswerer.load(run, knowledge_base=settings.knowledge_base)
    store = ServingStore(settings.db_url)
    metrics = ServingMetrics()
    drift = DriftFeed.for_run(run, model, store)

    def process(items: list[_Item]) -> list[Any]:
        started = time.perf_counter()
        texts = [i.text for i in items]
        pairs = [i.pair or "" for i in items] if model.text_pairs else None
        predictions, embeddings = model.predict_and_embed(
            texts, pairs=pairs, groups=[i.group for i in items], keys=[i.key for i in items]
        )
        metrics.observe_batch(len(items), time.perf_counter() - started)
        if isinstance(drift, DriftFeed):
            drift.observe(items, predictions, embeddings)
        return list(predictions)

    batcher: MicroBatcher[_Item, Any] = MicroBatcher(
        process,
        max_batch=settings.max_batch,
        max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue,
        length_of=lambda item: len(item.text) + len(item.pair or ""),  # padding follows length
    )
    return ServingState(
        settings=settings,
        admission=admission,
        model=model,
        store=store,
        limiter=RateLimiter(store),  # buckets in the database: one limit across workers
        batcher=batcher,
        logs=LogWriter(store, keep_inputs=settings.keep_inputs),
        drift=drift,
        metrics=metrics,
        run=run,
        answerer=answerer,
    )


def _generation_state(
    settings: ServeSettings,
    run: RunDir,
    admission: Admission,
    model: ServedGenerator,
    masker: Masker | None = None,
) -> ServingState:
    """The state of a causal-LM run: the batcher runs one request at a time and masks its
    responses; the log writer shares the masker (one spaCy pipeline, one batch at a time)."""
    store = ServingStore(settings.db_url)
    metrics = ServingMetrics()
    serial = SerialMasker(masker if masker is not None else presidio_masker)

    def process(jobs: list[_GenerationJob]) -> list[_Generated]:
        done = []
        for job in jobs:  # max_batch is 1: one request, with its own seed
            started = time.perf_counter()
            raw = model.generate(job.prompts, job.settings, job.seed)
            try:
                masked = serial(raw)
            except Exception as exc:  # never answer what could not be checked
                log.exception("masking generated responses failed")
                raise MaskingFailed(type(exc).__name__) from None
            if len(masked) != len(raw):
                raise MaskingFailed(f"the masker returned {len(masked)} texts for {len(raw)}")
            metrics.observe_batch(len(job.prompts), time.perf_counter() - started)
            done.append(_Generated(masked, [m != r for m, r in zip(masked, raw, strict=True)]))
        return done

    batcher: MicroBatcher[_GenerationJob, _Generated] = MicroBatcher(
        process, max_batch=1, max_wait_ms=0.0, max_queue=settings.max_queue
    )
    return ServingState(
        settings=settings,
        admission=admission,
        model=model,
        store=store,
        limiter=RateLimiter(store),
        batcher=batcher,
        logs=LogWriter(store, masker=serial, keep_inputs=settings.keep_inputs),
        drift=NotMonitored(model.model_id, GENERATION_NOT_MONITORED),
        metrics=metrics,
        run=run,
    )


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="or X-API-Key")
_basic = HTTPBasic(
    auto_error=False,
    realm="ethos",
    description="or HTTP Basic with the key as password (what a browser sends for /dashboard)",
)


class RequestCounter:
    """Counts each request by route and status for ``/metrics``, as plain ASGI.

    Why not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs the app in a
    task and streams its response through a memory channel, a cost on every request that a
    server answering a hundred small requests a second on two cores notices; this only watches
    the ``http.response.start`` message go by."""

    def __init__(self, app: ASGIApp, holder: dict[str, ServingState]) -> None:
        self.app = app
        self.holder = holder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before answering

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            state = self.holder.get("state")
            if state is not None:
                path = getattr(scope.get("route"), "path", "unmatched")
                state.metrics.observe_request(path, status, time.perf_counter() - started)


def create_app(
    settings: ServeSettings,
    *,
    state: ServingState | None = None,
    model: ServedModel | ServedGenerator | None = None,
    answerer: ServedAnswerer | None = None,
) -> FastAPI:
    """The app for one run; loading (model, reference, variant check, a grounded run's knowledge
    base) happens at start-up, except for a ``model`` and ``answerer`` already loaded (and
    checked) by the caller. ``settings.knowledge_base``: where a grounded run's knowledge base is
    now, when it moved (still checked against the recorded hash)."""
    holder: dict[str, ServingState] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = (
            state
            if state is not None
            else await asyncio.to_thread(_load_state, settings, model, answerer)
        )
        holder["state"] = loaded
        loaded.batcher.start()
        loaded.logs.start()
        try:
            yield
        finally:
            await loaded.batcher.stop()
            await asyncio.to_thread(loaded.logs.stop)
            loaded.store.close()

    app = FastAPI(
        title="ethos model service",
        version=API_VERSION,
        description="A governed model: predictions behind API keys, with PII-masked logs and "
        "drift monitoring. Authenticate with `Authorization: Bearer <key>` (see `ethos keys`).",
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,  # 413 by Content-Length or counted on a stream
        docs_url=None,  # FastAPI's pages load their scripts from a CDN: these load them here
        redoc_url=None,
    )
    add_offline_docs(app)

    def current() -> ServingState:
        if "state" not in holder:
            raise ApiError(
                503,
                "the model is still loading",
                hint="retry after Retry-After seconds",
                headers={"Retry-After": "5"},
            )
        return holder["state"]

    def requires(scope: str, *, browser: bool = False) -> Callable[..., Awaitable[KeyRecord]]:
        # Programs are asked for a Bearer key; a browser page (the dashboard) for HTTP Basic,
        # which makes the browser prompt for it (the key is the password).
        challenge = 'Basic realm="ethos"' if browser else 'Bearer, Basic realm="ethos"'

        async def check(
            bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
            header: str | None = Depends(_header_key),
            basic: HTTPBasicCredentials | None = Depends(_basic),
            st: ServingState = Depends(current),
        ) -> KeyRecord:
            token = (
                bearer.credentials
                if bearer is not None
                else header or (basic.password if basic is not None else None)
            )
            record = st.store.verify(token) if token else None
            if record is None:
                raise ApiError(
                    401,
                    "a valid API key is needed (Authorization: Bearer <key>)",
                    hint="create one with `ethos keys create`",
                    headers={"WWW-Authenticate": challenge},
                )
            if not record.allows(scope):
                raise ApiError(
                    403,
                    f"this key's scopes ({', '.join(record.scopes)}) do not include '{scope}'",
                    hint=f"use a key created with `ethos keys create --scope {scope}`",
                )
            # A write to the shared database (off the event loop); StoreUnavailable -> 503.
            wait = await asyncio.to_thread(st.limiter.check, record.key_id, record.rate_per_minute)
            if wait is not None:
                retry = max(1, math.ceil(wait))
                raise ApiError(
                    429,
                    f"rate limit of {record.rate_per_minute} requests a minute reached",
                    hint=f"retry in {retry} s (Retry-After)",
                    headers={"Retry-After": str(retry)},
                )
            return record

        return check

    app.add_middleware(RequestCounter, holder=holder)

    def classifier(request: Request, st: ServingState = Depends(current)) -> ServedModel:
        """The served classifier; 404 naming the right endpoint on a causal-LM run."""
        if isinstance(st.model, ServedGenerator):
            raise ApiError(
                404,
                f"this server serves a causal_lm run ({st.model.model_id}), which answers "
                f"POST {st.model.endpoint}; {request.url.path} is for classification runs",
                hint='send {"prompt": "..."} to POST ' + st.model.endpoint,
            )
        return st.model

    def generator(request: Request, st: ServingState = Depends(current)) -> ServedGenerator:
        """The served causal LM; 404 naming the right endpoint on a classification run."""
        if not isinstance(st.model, ServedGenerator):
            raise ApiError(
                404,
                f"this server serves a {st.model.config.task} run ({st.model.model_id}), which "
                f"answers POST /{API_VERSION}/predict; {request.url.path} is for causal_lm runs",
                hint='send {"inputs": [{"text": "..."}]} to POST /' + API_VERSION + "/predict",
            )
        return st.model

    def answering(request: Request, st: ServingState = Depends(current)) -> ServedAnswerer:
        """The grounded run's answerer; 404 naming the run's endpoint on any other run."""
        if st.answerer is None:
            if isinstance(st.model, ServedGenerator):
                task, endpoint, example = "causal_lm", st.model.endpoint, '{"prompt": "..."}'
            else:
                task, endpoint = st.model.config.task, f"/{API_VERSION}/predict"
                example = '{"inputs": [{"text": "..."}]}'
            raise ApiError(
                404,
                f"this server serves a {task} run ({st.model.model_id}) that is not grounded "
                f"(its manifest records no knowledge base), which answers POST {endpoint}; "
                f"{request.url.path} is for grounded runs",
                hint=f"send {example} to POST {endpoint}",
            )
        return st.answerer

    def texts_of(model: ServedModel, inputs: list[Any]) -> list[tuple[str, str | None]]:
        """(text, second text) per input; records are serialised as in training."""
        out: list[tuple[str, str | None]] = [(str(x.text), None) for x in inputs]
        records = [(i, x.record) for i, x in enumerate(inputs) if x.record is not None]
        if records:
            try:
                texts, pairs = model.pairs_from_records([r for _, r in records])
            except DataError as exc:
                raise ApiError.of(422, exc) from None
            for n, (i, _) in enumerate(records):
                out[i] = (texts[n], pairs[n] if pairs is not None else None)
        if model.text_pairs and any(x.record is None for x in inputs):
            raise ApiError(
                422,
                "this model reads a pair of texts",
                hint="send each input as a record with the run's text fields",
            )
        return out

    @app.post(
        f"/{API_VERSION}/predict",
        response_model=PredictResponse,
        tags=["model"],
        responses={
            **ERRORS,
            413: {"model": ErrorBody, "description": "body or input count over the limit"},
            503: {"model": ErrorBody, "description": "queue full; Retry-After"},
            504: {"model": ErrorBody, "description": "the request timeout passed"},
        },
    )
    async def predict(
        body: PredictRequest,
        key: KeyRecord = Depends(requires("predict")),
        model: ServedModel = Depends(classifier),
        st: ServingState = Depends(current),
    ) -> PredictResponse:
        """Decide one or more inputs (texts or records); each gets a prediction id."""
        if len(body.inputs) > st.settings.max_inputs:
            raise ApiError(
                413,
                f"{len(body.inputs)} inputs in one request; at most {st.settings.max_inputs}",
                hint="split the inputs over several requests",
            )
        started = time.perf_counter()
        inputs = texts_of(model, body.inputs)
        groups = [x.group for x in body.inputs]
        try:
            model.check_groups(groups)
        except DataError as exc:
            raise ApiError.of(422, exc) from None
        ids = [uuid.uuid4().hex for _ in inputs]
        items = [
            _Item(text, pair, group, pid)
            for (text, pair), group, pid in zip(inputs, groups, ids, strict=True)
        ]
        texts = [text for text, _ in inputs]
        try:
            results = await asyncio.wait_for(
                st.batcher.submit(items), timeout=st.settings.request_timeout_s
            )
        except QueueFull as full:
            raise ApiError(
                503,
                "the model's queue is full",
                hint="retry after Retry-After seconds",
                headers={"Retry-After": str(max(1, math.ceil(full.retry_after_s)))},
            ) from None
        except TimeoutError:
            raise ApiError(
                504,
                "the prediction took longer than the request timeout",
                hint="send fewer or shorter inputs per request, or serve with a longer --timeout",
            ) from None
        except DataError as exc:
            raise ApiError.of(422, exc) from None
        latency_ms = (time.perf_counter() - started) * 1000
        now = datetime.now(UTC)
        try:
            st.logs.submit(
                [
                    PendingLog(
                        prediction_id=pid,
                        created_at=now,
                        key_id=key.key_id,
                        model_id=model.model_id,
                        text=text,
                        label=r.label,
                        probabilities=r.probabilities,
                        group=item.group,
                        latency_ms=latency_ms,
                        thresholds_applied=r.thresholds_applied,
                        pair=item.pair,
                    )
                    for pid, text, r, item in zip(ids, texts, results, items, strict=True)
                ]
            )
        except LogQueueFull:
            raise ApiError(
                503,
                "prediction logging is behind",
                hint="retry after Retry-After seconds",
                headers={"Retry-After": "2"},
            ) from None
        return PredictResponse(
            model_id=model.model_id,
            decision_id=st.admission.decision_id,
            predictions=[
                Prediction(
                    prediction_id=pid,
                    label=r.label,
                    probabilities=r.probabilities,
                    thresholds_applied=r.thresholds_applied,
                )
                for pid, r in zip(ids, results, strict=True)
            ],
        )

    @app.post(
        f"/{API_VERSION}/explain",
        response_model=ExplainResponse,
        tags=["model"],
        responses={
            **ERRORS,
            504: {"model": ErrorBody, "description": "the request timeout passed"},
        },
    )
    async def explain(
        body: ExplainRequest,
        key: KeyRecord = Depends(requires("explain")),
        model: ServedModel = Depends(classifier),
        st: ServingState = Depends(current),
    ) -> ExplainResponse:
        """Token attributions (integrated gradients) for one input.

        The body is POST /v1/predict's, with one input: ``{"inputs": [{"text": "..."}]}``,
        plus an optional ``target`` label. The input's fields at the top level
        (``{"text": "..."}``), the earlier shape, are still accepted.
        """
        text, pair = texts_of(model, [body.item])[0]
        if body.target is not None and body.target not in model.label_names:
            raise ApiError(
                422,
                f"unknown target label {body.target!r}",
                hint=f"the labels are {list(model.label_names)}",
            )
        try:
            result = await asyncio.wait_for(
                asyncio.to_thread(model.explain, text, pair=pair, target=body.target),
                timeout=st.settings.request_timeout_s,
            )
        except TimeoutError:
            raise ApiError(
                504,
                "the explanation took longer than the request timeout",
                hint="explain a shorter input, or serve with a longer --timeout",
            ) from None
        return ExplainResponse(model_id=model.model_id, **result.to_json())

    @app.post(
        f"/{API_VERSION}/feedback",
        response_model=FeedbackResponse,
        tags=["model"],
        responses={
            **ERRORS,
            404: {"model": ErrorBody, "description": "no prediction has that id"},
            503: {"model": ErrorBody, "description": "the prediction is still being logged"},
        },
    )
    async def feedback(
        body: FeedbackRequest,
        key: KeyRecord = Depends(requires("feedback")),
        model: ServedModel = Depends(classifier),
        st: ServingState = Depends(current),
    ) -> FeedbackResponse:
        """The true label of an earlier prediction: for monitoring and later retraining.

        Feedback may follow its prediction at once: a prediction this server issued whose log
        row is still being masked and written is waited for (up to the request timeout).
        """
        if body.label not in model.label_names:
            raise ApiError(
                422,
                f"unknown label {body.label!r}",
                hint=f"the labels are {list(model.label_names)}",
            )
        if not await _until_written(st.logs, body.prediction_id, st.settings.request_timeout_s):
            raise ApiError(
                503,
                "that prediction is still being logged",
                hint="retry after Retry-After seconds",
                headers={"Retry-After": "1"},
            )
        try:
            await asyncio.to_thread(
                st.store.log_feedback, body.prediction_id, body.label, key.key_id
            )
        except UnknownPrediction as exc:
            raise ApiError.of(404, exc) from None
        await asyncio.to_thread(st.drift.feedback, body.prediction_id, body.label)
        return FeedbackResponse(prediction_id=body.prediction_id, recorded=True)

    @app.post(
        f"/{API_VERSION}/generate",
        response_model=GenerateResponse,
        tags=["model"],
        responses={
            **ERRORS,
            400: {"model": ErrorBody, "description": "an empty prompt, or one too long"},
            404: {"model": ErrorBody, "description": "the served run is not a causal LM"},
            413: {"model": ErrorBody, "description": "body or prompt count over the limit"},
            503: {"model": ErrorBody, "description": "queue full, or masking failed"},
            504: {"model": ErrorBody, "description": "the request timeout passed"},
        },
    )
    async def generate(
        body: GenerateRequest,
        key: KeyRecord = Depends(requires("predict")),
        model: ServedGenerator = Depends(generator),
        st: ServingState = Depends(current),
    ) -> GenerateResponse:
        """Respond to one prompt (``{"prompt": "..."}``) or several (``{"prompts": [...]}``).

        Served by a ``causal_lm`` run, with a key of scope ``predict``. Settings left out take
        the run's generation defaults; the seed used is returned, so the same request can be
        repeated exactly. Personal data in the responses is replaced by placeholders such as
        ``<PERSON>`` before they are answered and logged; a caller cannot opt out.
        """
        prompts = body.all_prompts
        if len(prompts) > st.settings.max_prompts:
            raise ApiError(
                413,
                f"{len(prompts)} prompts in one request; at most {st.settings.max_prompts}",
                hint="split the prompts over several requests",
            )
        try:
            settings = model.settings(
                max_new_tokens=body.max_new_tokens,
                temperature=body.temperature,
                top_p=body.top_p,
            )
        except ValidationError as exc:
            raise ApiError(422, _validation_message(exc.errors())) from None
        seed = body.seed if body.seed is not None else secrets.randbelow(MAX_SEED + 1)
        started = time.perf_counter()
        try:
            (done,) = await asyncio.wait_for(
                st.batcher.submit([_GenerationJob(prompts, settings, seed)]),
                timeout=st.settings.request_timeout_s,
            )
        except QueueFull as full:
            raise ApiError(
                503,
                "the model's queue is full",
                hint="retry after Retry-After seconds",
                headers={"Retry-After": str(max(1, math.ceil(full.retry_after_s)))},
            ) from None
        except TimeoutError:
            raise ApiError(
                504,
                "the generation took longer than the request timeout",
                hint="ask for fewer max_new_tokens or fewer prompts, or serve with a longer "
                "--timeout",
            ) from None
        except ModelError as exc:  # an empty prompt, or one the context window cannot hold
            raise ApiError.of(400, exc) from None
        except MaskingFailed:
            raise ApiError(
                503,
                "the responses could not be checked for personal data, so they are not answered",
                hint="retry; the server log says what failed",
                headers={"Retry-After": "2"},
            ) from None
        latency_ms = (time.perf_counter() - started) * 1000
        used = {**settings.model_dump(), "seed": seed}
        ids = _log_generations(
            st.logs,
            "generation",
            key_id=key.key_id,
            model_id=model.model_id,
            prompts=prompts,
            responses=done.responses,
            settings=[used] * len(prompts),
            latency_ms=latency_ms,
        )
        return GenerateResponse(
            model_id=model.model_id,
            decision_id=st.admission.decision_id,
            responses=done.responses,
            generation_ids=ids,
            pii_masked=done.masked,
            settings=GenerationSettings(**used),
            latency_ms=round(latency_ms, 3),
        )

    @app.post(
        f"/{API_VERSION}/answer",
        response_model=AnswerResponse,
        tags=["model"],
        responses={
            **ERRORS,
            400: {"model": ErrorBody, "description": "an empty question"},
            404: {"model": ErrorBody, "description": "the served run is not grounded"},
            413: {"model": ErrorBody, "description": "body or question count over the limit"},
            503: {"model": ErrorBody, "description": "answer logging is behind"},
            504: {"model": ErrorBody, "description": "the request timeout passed"},
        },
    )
    async def answer(
        body: AnswerRequest,
        key: KeyRecord = Depends(requires("predict")),
        answerer: ServedAnswerer = Depends(answering),
        st: ServingState = Depends(current),
    ) -> AnswerResponse:
        """Answer one question (``{"question": "..."}``) or several (``{"questions": [...]}``)
        from the run's knowledge base, citing the passages retrieved, or abstain.

        Served by a grounded run, with a key of scope ``predict``. Each answer is the reader's
        label on the best passage, with its probabilities and the top passages as citations; when
        the best passage's similarity is below the run's calibrated threshold the answer is null,
        ``abstained`` true and ``message`` "not in the knowledge base". The knowledge base is the
        one the run was audited and gated with (its ``kb_sha256`` is in the answer).
        """
        questions = body.all_questions
        if len(questions) > st.settings.max_inputs:
            raise ApiError(
                413,
                f"{len(questions)} questions in one request; at most {st.settings.max_inputs}",
                hint="split the questions over several requests",
            )
        started = time.perf_counter()
        try:
            answers = await asyncio.wait_for(
                asyncio.to_thread(answerer.answer, questions),
                timeout=st.settings.request_timeout_s,
            )
        except TimeoutError:
            raise ApiError(
                504,
                "the answers took longer than the request timeout",
                hint="send fewer questions per request, or serve with a longer --timeout",
            ) from None
        except ModelError as exc:  # an empty question
            raise ApiError.of(400, exc) from None
        latency_ms = (time.perf_counter() - started) * 1000
        kb = answerer.knowledge_base()
        ids = _log_generations(
            st.logs,
            "answer",
            key_id=key.key_id,
            model_id=answerer.model_id,
            prompts=questions,
            responses=[str(found["answer"] or found["message"]) for found in answers],
            settings=[_answer_record(found, kb["kb_sha256"]) for found in answers],
            latency_ms=latency_ms,
        )
        return AnswerResponse(
            model_id=answerer.model_id,
            decision_id=st.admission.decision_id,
            answers=[GroundedAnswerOut(**found) for found in answers],
            answer_ids=ids,
            knowledge_base=KnowledgeBaseOut(**kb),
            latency_ms=round(latency_ms, 3),
        )

    @app.get(f"/{API_VERSION}/model", response_model=ModelInfo, tags=["model"], responses=ERRORS)
    async def model_info(
        key: KeyRecord = Depends(requires("predict")), st: ServingState = Depends(current)
    ) -> ModelInfo:
        """The served model: gate decision, policy score, card summary, the variant's check.

        The card summary is read from the run's card files on each call (``available: false``
        without a card) and says whether the card describes the decision being served.
        """
        card = await asyncio.to_thread(st.card)
        return ModelInfo(
            model_id=st.model.model_id,
            **st.admission.to_json(),
            model={
                **st.model.info(),
                **({"grounded": st.answerer.info()} if st.answerer is not None else {}),
            },
            card=CardSummary(**card),
        )

    @app.get(
        CARD_URL,
        response_class=HTMLResponse,
        tags=["model"],
        responses={
            **ERRORS,
            404: {"model": ErrorBody, "description": "the run has no card.html"},
        },
    )
    async def model_card(
        key: KeyRecord = Depends(requires("predict", browser=True)),
        st: ServingState = Depends(current),
    ) -> Response:
        """The run's model card as a page (card.html, self-contained), as `ethos card` wrote it."""
        page = st.run.card_html_path
        if not page.is_file():
            raise ApiError(
                404,
                "the served run has no model card",
                hint=f"write one with `ethos card {st.run.path}`; the server reads it at once",
            )
        return FileResponse(page, media_type="text/html")

    @app.get(
        f"/{API_VERSION}/alerts",
        response_model=AlertsResponse,
        tags=["monitoring"],
        responses=ERRORS,
    )
    async def alerts(
        key: KeyRecord = Depends(requires("admin")), st: ServingState = Depends(current)
    ) -> AlertsResponse:
        """Drift and feedback alerts: those active now, the most recent ones, and the state.

        ``state.drift_judged`` is false while the window is too small for a drift alert to be
        raised: then an empty ``active`` list means "too few to judge", not "all clear".
        """
        active, recent, state = await asyncio.to_thread(st.drift.alerts)
        return AlertsResponse(
            active=[AlertOut(**a) for a in active],
            recent=[AlertOut(**a) for a in recent],
            state=MonitorState(**state),
        )

    @app.get("/dashboard", response_class=HTMLResponse, tags=["monitoring"])
    async def dashboard(
        key: KeyRecord = Depends(requires("admin", browser=True)),
        st: ServingState = Depends(current),
    ) -> HTMLResponse:
        """The monitoring page: drift, positive rates and feedback over time, and alerts."""
        card = await asyncio.to_thread(st.card)
        info = {**st.admission.to_json(), "model_id": st.model.model_id, "card": card}
        return HTMLResponse(await asyncio.to_thread(st.drift.dashboard, info))

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)  # browsers ask for it with every page

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        """The process is up (says nothing about the model)."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["operations"])
    async def readyz() -> JSONResponse:
        """Ready when the model is loaded and the database answers."""
        st = holder.get("state")
        if st is None:
            return JSONResponse({"status": "loading", "detail": {}}, status_code=503)
        try:
            await asyncio.to_thread(st.store.count_predictions)
        except Exception as exc:  # any database failure means not ready
            return JSONResponse(
                {"status": "database unavailable", "detail": {"error": type(exc).__name__}},
                status_code=503,
            )
        return JSONResponse(
            {
                "status": "ready",
                "detail": {
                    "model_id": st.model.model_id,
                    "queue": st.batcher.queue_depth,
                    "logs_pending": st.logs.pending,
                },
            }
        )

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    async def metrics() -> Response:
        """Prometheus metrics: requests, latency, batch sizes, queue, drift gauges, alerts."""
        st = holder.get("state")
        if st is None:
            return PlainTextResponse("", status_code=503)
        st.metrics.set_gauges(
            await asyncio.to_thread(st.drift.gauges), st.batcher.queue_depth, st.logs
        )
        payload, content_type = st.metrics.render()
        return Response(payload, media_type=content_type)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (204, 304):  # no body allowed
            return Response(status_code=exc.status_code, headers=exc.headers)
        detail = exc.detail if isinstance(exc.detail, str) else jsonable_encoder(exc.detail)
        return JSONResponse(
            error_body(str(exc.detail), getattr(exc, "hint", None), detail),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        example = EXAMPLES.get(request.url.path, PREDICT_EXAMPLE)
        return JSONResponse(
            error_body(
                _validation_message(errors),
                _validation_hint(errors, example),
                jsonable_encoder(errors),
            ),
            status_code=422,
        )

    @app.exception_handler(EthosError)
    async def ethos_error(request: Request, exc: EthosError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.hint), status_code=422)

    @app.exception_handler(StoreUnavailable)
    async def database_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        # Limits, monitor and logs live in the database: without it nothing is served blind.
        return JSONResponse(
            error_body(exc.message, exc.hint), status_code=503, headers={"Retry-After": "5"}
        )

    return app


async def _until_written(logs: LogWriter, prediction_id: str, timeout: float) -> bool:
    """Wait while the log writer still holds this prediction; False if it still does at the end.

    Polled rather than waited on in a worker thread, so many early feedbacks cannot take the
    threads the database calls need.
    """
    deadline = time.monotonic() + timeout
    while logs.unwritten(prediction_id):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(FEEDBACK_POLL_S)
    return True


def _where(error: Any) -> str:
    return ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"


def _validation_message(errors: Sequence[Any]) -> str:
    """One line a person can act on: where in the body, and what was wrong, for each error."""
    parts = [f"{_where(e)}: {e.get('msg', 'invalid')}" for e in list(errors)[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


PREDICT_EXAMPLE = '{"inputs": [{"text": "..."}]}'
GENERATE_EXAMPLE = '{"prompt": "..."} or {"prompts": ["...", "..."]}'
ANSWER_EXAMPLE = '{"question": "..."} or {"questions": ["...", "..."]}'
EXAMPLES = {
    f"/{API_VERSION}/generate": GENERATE_EXAMPLE,
    f"/{API_VERSION}/answer": ANSWER_EXAMPLE,
}
"""The body a malformed request to each endpoint is shown (default: PREDICT_EXAMPLE)."""


def _log_generations(
    logs: LogWriter,
    what: str,
    *,
    key_id: str,
    model_id: str,
    prompts: Sequence[str],
    responses: Sequence[str],
    settings: Sequence[dict[str, Any]],
    latency_ms: float,
) -> list[str]:
    """Queue one ``generation_log`` row per prompt (``/v1/generate``, ``/v1/answer``) and return
    their ids; a full queue answers 503, since nothing is answered that is not logged."""
    now = datetime.now(UTC)
    ids = [uuid.uuid4().hex for _ in prompts]
    try:
        logs.submit(
            [
                PendingGeneration(
                    generation_id=gid,
                    created_at=now,
                    key_id=key_id,
                    model_id=model_id,
                    prompt=prompt,
                    masked_response=response,
                    settings=used,
                    latency_ms=latency_ms,
                )
                for gid, prompt, response, used in zip(
                    ids, prompts, responses, settings, strict=True
                )
            ]
        )
    except LogQueueFull:
        raise ApiError(
            503,
            f"{what} logging is behind",
            hint="retry after Retry-After seconds",
            headers={"Retry-After": "2"},
        ) from None
    return ids


def _answer_record(found: dict[str, Any], kb_sha256: str) -> dict[str, Any]:
    """What the log keeps of an answer beside the masked question's hash (the ``settings`` of
    its ``generation_log`` row): no text, only labels, passage ids and scores."""
    return {
        "endpoint": f"/{API_VERSION}/answer",
        "kb_sha256": kb_sha256,
        "answer": found["answer"],
        "abstained": found["abstained"],
        "probabilities": found["probabilities"],
        "retrieval_score": found["retrieval_score"],
        "threshold": found["threshold"],
        "read_passage": found["read_passage"],
        "citations": [c["passage_id"] for c in found["citations"]],
    }


def _validation_hint(errors: Sequence[Any], example: str = PREDICT_EXAMPLE) -> str | None:
    """The body's expected shape, when the body as a whole (not one field) was wrong."""
    whole = ("missing", "model_attributes_type")
    if any(
        e.get("type") == "json_invalid" or (_where(e) == "body" and e.get("type") in whole)
        for e in errors
    ):
        return f"send a JSON object such as {example}"
    return None


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: settings come from ``ETHOS_SERVE_SETTINGS``."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise EthosError(f"{SETTINGS_ENV} is not set; start the server with `ethos serve`")
    return create_app(ServeSettings.model_validate_json(raw))
