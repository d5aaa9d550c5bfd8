"""Prediction logging off the request path: mask PII first, then keep only a hash of the result.

A request's raw text lives in memory until this thread has masked it with Presidio (the same
detector as the audit, `ethos.text.pii`); what reaches the database is the SHA-256 of the masked
text with the outputs, latency and key id. Masking here rather than in the request keeps the
response fast and lets spaCy work on batches. The queue is bounded: when logging falls behind,
new requests are refused (503) rather than served unlogged or remembered without limit.

The writer remembers which prediction ids it has been handed and not yet written (queued, or
being masked and committed), so that feedback sent right after a prediction can wait for its
row instead of being told the prediction does not exist (:meth:`LogWriter.unwritten`).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ethos.serving.store import PredictionRecord, ServingStore

log = logging.getLogger("ethos.serving")

Masker = Callable[[Sequence[str]], list[str]]


def presidio_masker(texts: Sequence[str]) -> list[str]:
    from ethos.text.pii import mask_texts

    return mask_texts(texts)


@dataclass
class PendingLog:
    """A prediction waiting to be logged; ``text`` is raw and never leaves this process."""

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


class LogQueueFull(Exception):
    """Logging is behind; the request is refused rather than served unlogged."""


class LogWriter:
    def __init__(
        self,
        store: ServingStore,
        *,
        masker: Masker = presidio_masker,
        max_pending: int = 10_000,
        batch: int = 64,
    ) -> None:
        self._store = store
        self._mask = masker
        self._queue: queue.Queue[PendingLog | None] = queue.Queue(maxsize=max_pending)
        self._batch = batch
        self._thread = threading.Thread(target=self._run, name="ethos-log-writer", daemon=True)
        self._unwritten: set[str] = set()
        self._unwritten_lock = threading.Lock()
        self.written = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def submit(self, items: Sequence[PendingLog]) -> None:
        """Queue a request's predictions; all or nothing, so a request is never half-logged."""
        if self._queue.maxsize - self._queue.qsize() < len(items):
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
        """Write everything queued, then end the thread (server shutdown)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        done = False
        while not done:
            first = self._queue.get()
            items: list[PendingLog] = []
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

    def _write(self, items: list[PendingLog]) -> None:
        try:
            masked = self._mask([item.text for item in items])
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
            self._store.log_predictions(records)
            self.written += len(records)
        except Exception:  # logging must not take the server down; the count is exported
            self.failed += len(items)
            log.exception("writing %d prediction log rows failed", len(items))
        finally:
            for item in items:  # drop the raw text as soon as it is no longer needed
                item.text = ""
            with self._unwritten_lock:  # written or failed: either way nothing more will come of it
                self._unwritten.difference_update(item.prediction_id for item in items)
