"""The log writer knows which predictions it holds unwritten, so early feedback can wait for them.

The masker is a stand-in that blocks until the test lets it go: the moment between "the request
has answered" and "the row is committed" is held open, instead of hoped for.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ethos.serving.logwriter import LogWriter, PendingLog
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

    def __call__(self, texts: Sequence[str]) -> list[str]:
        assert self.release.wait(30), "the test never released the masker"
        if self.fail:
            raise RuntimeError("masking failed")
        return list(texts)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ServingStore]:
    with ServingStore(str(tmp_path / "serving.db")) as opened:
        yield opened


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
