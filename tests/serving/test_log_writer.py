"""The log writer knows which predictions it holds unwritten, so early feedback can wait for them;
and when it cannot keep up, requests are refused (503) rather than served unlogged.

The masker is a stand-in that blocks until the test lets it go: the moment between "the request
has answered" and "the row is committed" is held open, and the queue can be filled, instead of
hoped for.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from live_server import create_key

from ethos.rundir import RunDir
from ethos.serving.app import _load_state, create_app
from ethos.serving.logwriter import LogQueueFull, LogWriter, PendingLog
from ethos.serving.settings import ServeSettings
from ethos.serving.store import ServingStore


def pending(prediction_id: str) -> PendingLog:
    return PendingLog(
        prediction_id=prediction_id,
        created_at=datetime.now(UTC),
        key_id="k",
        model_id="m",
        text="age: 30; prior offences: 2",
        label="1",
        probabilities={"0": 0.4, "1": 0.6},
        group=None,
        latency_ms=1.0,
        thresholds_applied=False,
    )


class GatedMasker:
    """Masks nothing until ``release`` is set; fails instead when ``fail`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.fail = False
        self.events: list[str] = []

    def __call__(self, texts: Sequence[str]) -> list[str]:
        assert self.release.wait(30), "the test never released the masker"
        self.events.append(f"mask {len(texts)}")
        if self.fail:
            raise RuntimeError("masking failed")
        return list(texts)


class WarmedMasker(GatedMasker):
    def warm(self) -> None:
        self.events.append("warm")


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_prediction_is_unwritten_until_its_row_is_committed(store: ServingStore) -> None:
    masker = GatedMasker()
    writer = LogWriter(store, masker=masker)
    writer.start()
    pid, other = uuid.uuid4().hex, uuid.uuid4().hex
    try:
        writer.submit([pending(pid)])
        wait_until(lambda: writer.pending == 0)  # taken off the queue: being masked
        assert writer.unwritten(pid) and not writer.unwritten(other)
        assert store.prediction(pid) is None  # the window in which feedback used to get 404
        masker.release.set()
        wait_until(lambda: not writer.unwritten(pid))
        assert store.prediction(pid) is not None  # not unwritten means written (or failed)
    finally:
        masker.release.set()
        writer.stop()
    assert writer.written == 1 and writer.failed == 0


def test_a_failed_write_is_not_waited_for_forever(store: ServingStore) -> None:
    masker = GatedMasker()
    masker.fail = True
    writer = LogWriter(store, masker=masker)
    writer.start()
    pid = uuid.uuid4().hex
    try:
        writer.submit([pending(pid)])
        assert writer.unwritten(pid)
        masker.release.set()
        wait_until(lambda: not writer.unwritten(pid))
    finally:
        writer.stop()
    assert writer.failed == 1 and store.prediction(pid) is None


def test_a_full_queue_refuses_a_whole_request_and_keeps_the_rest(store: ServingStore) -> None:
    masker = GatedMasker()
    writer = LogWriter(store, masker=masker, max_pending=2)
    writer.start()
    first, second, third, refused = (uuid.uuid4().hex for _ in range(4))
    try:
        writer.submit([pending(first)])
        wait_until(lambda: writer.pending == 0)  # the writer holds it, masking
        writer.submit([pending(second), pending(third)])  # the queue is full now
        with pytest.raises(LogQueueFull):
            writer.submit([pending(refused)])
        with pytest.raises(LogQueueFull):  # all or nothing: no part of a request is queued
            writer.submit([pending(uuid.uuid4().hex), pending(uuid.uuid4().hex)])
        assert writer.pending == 2 and not writer.unwritten(refused)
        masker.release.set()
        wait_until(lambda: not any(map(writer.unwritten, (first, second, third))))
    finally:
        masker.release.set()
        writer.stop()
    assert writer.written == 3 and store.count_predictions() == 3
    assert store.prediction(refused) is None


def test_a_stopping_writer_takes_nothing_it_would_not_write(store: ServingStore) -> None:
    masker = GatedMasker()
    masker.release.set()
    writer = LogWriter(store, masker=masker)
    writer.start()
    kept = uuid.uuid4().hex
    writer.submit([pending(kept)])
    writer.stop()
    with pytest.raises(LogQueueFull):
        writer.submit([pending(uuid.uuid4().hex)])
    assert writer.written == 1 and store.count_predictions() == 1 and store.prediction(kept)


def test_the_masker_is_warmed_once_before_the_first_batch(store: ServingStore) -> None:
    masker = WarmedMasker()
    masker.release.set()
    writer = LogWriter(store, masker=masker)
    writer.start()
    writer.submit([pending(uuid.uuid4().hex)])
    writer.submit([pending(uuid.uuid4().hex)])
    writer.stop()
    assert masker.events[0] == "warm" and masker.events.count("warm") == 1
    assert sum(int(e.split()[1]) for e in masker.events[1:]) == 2


def test_a_full_log_queue_answers_503_and_nothing_is_served_unlogged(
    pass_run: RunDir, ledger: str, tmp_path: Path
) -> None:
    """Through the app: when the writer cannot keep up, /v1/predict answers 503 with
    Retry-After, and every prediction it did answer has its row once the writer catches up."""
    settings = ServeSettings(
        run_dir=pass_run.path, db_url=str(tmp_path / "serving.db"), ledger_url=ledger
    )
    token = create_key(str(tmp_path / "serving.db"), "predict")
    state = _load_state(settings)
    masker = GatedMasker()
    state.logs = writer = LogWriter(state.store, masker=masker, max_pending=1)
    text = {"text": "age: 30; prior offences: 2"}
    served: list[str] = []
    try:
        with TestClient(create_app(settings, state=state)) as client:
            client.headers["Authorization"] = f"Bearer {token}"

            def predict(n: int) -> httpx.Response:
                return client.post("/v1/predict", json={"inputs": [text] * n})

            for queued in (0, 1):  # one being masked, then one queued: the queue is full
                response = predict(1)
                assert response.status_code == 200, response.text
                served += [p["prediction_id"] for p in response.json()["predictions"]]
                wait_until(lambda q=queued: writer.pending == q)
            for n in (1, 2):
                refused = predict(n)
                assert refused.status_code == 503, refused.text
                assert int(refused.headers["Retry-After"]) >= 1
                assert "logging" in refused.json()["error"]
                assert "predictions" not in refused.json()
            masker.release.set()
            wait_until(lambda: not any(map(writer.unwritten, served)))
            assert client.post("/v1/predict", json={"inputs": [text]}).status_code == 200
    finally:
        masker.release.set()
    with ServingStore(settings.db_url) as store:
        assert all(store.prediction(pid) is not None for pid in served)
        assert store.count_predictions() == len(served) + 1  # the refused left no row
