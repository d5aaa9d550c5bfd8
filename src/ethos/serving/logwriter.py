"""Prediction logging off the request path: mask PII first, then keep only a hash of the result.

A request's raw text lives in memory until this thread has masked it with Presidio (the same
detector as the audit, `ethos.text.pii`); what reaches the database is the SHA-256 of the masked
text with the outputs, latency and key id. With ``keep_inputs`` (``ethos serve --keep-inputs``)
the masked text itself is stored too, in the same transaction, so that labelled feedback can be
retrained on; the raw text never is. Masking here rather than in the request keeps the
response fast and lets spaCy work on batches. The queue is bounded: when logging falls behind,
new requests are refused (503) rather than served unlogged or remembered without limit.

Generations of a causal-LM run (``POST /v1/generate``, :class:`PendingGeneration`) go the same
way: the raw prompt is masked here, and the response, which the request path already masked (it
is answered masked), is stored as it is; both as hashes, and as masked text with ``keep_inputs``.

The writer remembers which prediction ids it has been handed and not yet written (queued, or
being masked and committed), so that feedback sent right after a prediction can wait for its
row instead of being told the prediction does not exist (:meth:`LogWriter.unwritten`).

Masking keeps up with the model: :func:`ethos.text.pii.find_pii` runs only the recognizers of
the logged entity types and spaCy's NER batched, and tags and lemmatises only texts with a hit
(the same spans as Presidio's plain path; measured in ``benchmarks/pii_masking.py``). The
writer builds the detector when it starts, not on the first request.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ethos.serving.store import GenerationRecord, MaskedInput, PredictionRecord, ServingStore
from ethos.text.pii import DEFAULT_ENTITIES, mask_texts

log = logging.getLogger("ethos.serving")

Masker = Callable[[Sequence[str]], list[str]]
"""Raw texts in, the same texts with personal data replaced out. A masker may also have a
``warm()`` method, which the writer calls once when it starts (building a detector takes
seconds)."""


class PresidioMasker:
    """Masks with Presidio (:func:`ethos.text.pii.mask_texts`), the detector the audit uses."""

    def __init__(self, entities: Sequence[str] = DEFAULT_ENTITIES) -> None:
        self.entities = tuple(entities)

    def __call__(self, texts: Sequence[str]) -> list[str]:
        return mask_texts(texts, entities=self.entities)

    def warm(self) -> None:
        """Build the process's analyzer and this entity list's plan before the first request."""
        self(["warm-up: Jane Doe, jane@example.com, (212) 555-0147"])


presidio_masker = PresidioMasker()


class SerialMasker:
    """A masker that masks one batch at a time, for a process that masks from two threads (the
    log writer, and the request path of ``/v1/generate``, which answers masked responses):
    spaCy's pipelines are not documented as safe to run concurrently."""

    def __init__(self, masker: Masker = presidio_masker) -> None:
        self._mask = masker
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> list[str]:
        with self._lock:
            return self._mask(texts)

    def warm(self) -> None:
        warm = getattr(self._mask, "warm", None)
        if callable(warm):
            with self._lock:
                warm()


@dataclass
class PendingLog:
    """A prediction waiting to be logged; ``text`` is raw and never leaves this process.

    ``pair`` is the raw second text of a text-pair model: masked and kept with ``keep_inputs``
    when given; when the caller leaves it None, the kept ``masked_pair`` is None too.
    """

    prediction_id: str
    created_at: datetime
    key_id: str
    model_id: str
    text: str
    label: str
    probabilities: dict[str, float]
    group: str | None
    latency_ms: float
    thresholds_applied: bool
    pair: str | None = None


@dataclass
class PendingGeneration:
    """A generation waiting to be logged: ``prompt`` is raw and never leaves this process;
    ``masked_response`` was masked on the request path (the caller got it masked too)."""

    generation_id: str
    created_at: datetime
    key_id: str
    model_id: str
    prompt: str
    masked_response: str
    settings: dict[str, Any]
    latency_ms: float

    @property
    def prediction_id(self) -> str:
        """The id the writer tracks (see :meth:`LogWriter.unwritten`)."""
        return self.generation_id


Pending = PendingLog | PendingGeneration


class LogQueueFull(Exception):
    """Logging is behind (or stopped); the request is refused rather than served unlogged."""


class LogWriter:
    """Masks and logs predictions on a thread of its own (module docstring).

    ``keep_inputs``: store each prediction's masked text (and masked second text) beside its
    hash, for retraining on feedback; off, the log holds only hashes.
    """

    def __init__(
        self,
        store: ServingStore,
        *,
        masker: Masker = presidio_masker,
        max_pending: int = 10_000,
        batch: int = 64,
        keep_inputs: bool = False,
    ) -> None:
        self._store = store
        self._mask = masker
        self.keep_inputs = keep_inputs
        self._queue: queue.Queue[Pending | None] = queue.Queue(maxsize=max_pending)
        self._batch = batch
        self._thread = threading.Thread(target=self._run, name="ethos-log-writer", daemon=True)
        self._unwritten: set[str] = set()
        self._unwritten_lock = threading.Lock()
        self._submit_lock = threading.Lock()
        self._closed = False
        self.written = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def submit(self, items: Sequence[Pending]) -> None:
        """Queue a request's predictions; all or nothing, so a request is never half-logged.

        Raises :class:`LogQueueFull` when they do not all fit, or once :meth:`stop` has begun
        (nothing would write them). Submissions are serialised: the room checked is the room
        used, as only the writer takes from the queue in between.
        """
        with self._submit_lock:
            if self._closed or self._queue.maxsize - self._queue.qsize() < len(items):
                raise LogQueueFull
            with self._unwritten_lock:
                self._unwritten.update(item.prediction_id for item in items)
            for item in items:
                self._queue.put_nowait(item)

    def unwritten(self, prediction_id: str) -> bool:
        """Whether this prediction was handed to the writer and its row is not written yet.

        False again once the write was attempted, whether it succeeded or failed (then the
        database, which the caller asks next, is the one that knows).
        """
        with self._unwritten_lock:
            return prediction_id in self._unwritten

    def stop(self, timeout: float = 60.0) -> None:
        """Refuse new predictions, write everything queued, then end the thread (shutdown)."""
        with self._submit_lock:
            self._closed = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _warm(self) -> None:
        warm = getattr(self._mask, "warm", None)
        if callable(warm):
            try:
                warm()
            except Exception:  # the first batch will say what is wrong, and count as failed
                log.exception("warming the PII masker failed")

    def _run(self) -> None:
        self._warm()
        done = False
        while not done:
            first = self._queue.get()
            items: list[Pending] = []
            if first is None:
                done = True
            else:
                items.append(first)
            while len(items) < self._batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    done = True
                    break
                items.append(more)
            if items:
                self._write(items)

    def _masked(self, items: list[PendingLog]) -> tuple[list[str], list[str | None]]:
        """The masked text of each item and, with ``keep_inputs``, its masked second text.

        One masker call for both, so spaCy sees one batch; second texts are masked only when
        they will be kept (the hash is of the first text alone).
        """
        texts = [item.text for item in items]
        pairs = [item.pair if self.keep_inputs else None for item in items]
        given = [pair for pair in pairs if pair is not None]
        masked = self._mask(texts + given)
        if len(masked) != len(texts) + len(given):
            raise ValueError(f"the masker returned {len(masked)} texts for {len(texts + given)}")
        masked_pairs = iter(masked[len(texts) :])
        return masked[: len(texts)], [None if p is None else next(masked_pairs) for p in pairs]

    def _write(self, items: list[Pending]) -> None:
        predictions = [item for item in items if isinstance(item, PendingLog)]
        generations = [item for item in items if isinstance(item, PendingGeneration)]
        if predictions:
            self._write_predictions(predictions)
        if generations:
            self._write_generations(generations)

    def _write_generations(self, items: list[PendingGeneration]) -> None:
        try:
            masked = self._mask([item.prompt for item in items])
            if len(masked) != len(items):
                raise ValueError(f"the masker returned {len(masked)} texts for {len(items)}")
            records = [
                GenerationRecord(
                    generation_id=item.generation_id,
                    created_at=item.created_at,
                    key_id=item.key_id,
                    model_id=item.model_id,
                    prompt_sha256=hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
                    response_sha256=hashlib.sha256(
                        item.masked_response.encode("utf-8")
                    ).hexdigest(),
                    settings=item.settings,
                    latency_ms=item.latency_ms,
                    masked_prompt=prompt if self.keep_inputs else None,
                    masked_response=item.masked_response if self.keep_inputs else None,
                )
                for item, prompt in zip(items, masked, strict=True)
            ]
            self._store.log_generations(records)
            self.written += len(records)
        except Exception:  # logging must not take the server down; the count is exported
            self.failed += len(items)
            log.exception("writing %d generation log rows failed", len(items))
        finally:
            for item in items:  # drop the raw prompt as soon as it is no longer needed
                item.prompt = ""
            with self._unwritten_lock:
                self._unwritten.difference_update(item.generation_id for item in items)

    def _write_predictions(self, items: list[PendingLog]) -> None:
        try:
            masked, masked_pairs = self._masked(items)
            records = [
                PredictionRecord(
                    prediction_id=item.prediction_id,
                    created_at=item.created_at,
                    key_id=item.key_id,
                    model_id=item.model_id,
                    input_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    label=item.label,
                    probabilities=item.probabilities,
                    group=item.group,
                    latency_ms=item.latency_ms,
                    thresholds_applied=item.thresholds_applied,
                )
                for item, text in zip(items, masked, strict=True)
            ]
            kept = (
                [MaskedInput(t, p) for t, p in zip(masked, masked_pairs, strict=True)]
                if self.keep_inputs
                else None
            )
            self._store.log_predictions(records, inputs=kept)
            self.written += len(records)
        except Exception:  # logging must not take the server down; the count is exported
            self.failed += len(items)
            log.exception("writing %d prediction log rows failed", len(items))
        finally:
            for item in items:  # drop the raw text as soon as it is no longer needed
                item.text = ""
                item.pair = None
            with self._unwritten_lock:  # written or failed: either way nothing more will come of it
                self._unwritten.difference_update(item.prediction_id for item in items)
