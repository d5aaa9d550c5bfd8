"""MicroBatcher with a fake batch function (no model): sharing, limits, order, errors, draining."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from ethos.serving.batching import BatcherStopped, MicroBatcher, QueueFull, batch_window_s

X = TypeVar("X")


def run(main: Callable[[], Awaitable[X]]) -> X:
    return asyncio.run(asyncio.wait_for(main(), timeout=20))


async def in_flight(batcher: MicroBatcher[int, int], requests: int) -> None:
    """Wait until ``requests`` requests were submitted and none waits (all taken into batches)."""
    while batcher.stats().requests < requests or batcher.queue_depth:
        await asyncio.sleep(0.001)


class Recorder:
    """A batch function that records its calls and thread, optionally slow or failing."""

    def __init__(self, delay_s: float = 0.0, fail_on: object = None) -> None:
        self.calls: list[list[int]] = []
        self.threads: set[str] = set()
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.gate.wait(10)
        self.calls.append(list(items))
        self.threads.add(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on}")
        return [10 * i for i in items]


def test_requests_arriving_together_share_one_call_in_the_worker_thread() -> None:
    fake = Recorder()

    async def main() -> list[list[int]]:
        batcher = MicroBatcher(fake, max_batch=32, max_wait_ms=200)
        batcher.start()
        results = await asyncio.gather(
            batcher.submit([1, 2]), batcher.submit([3]), batcher.submit([4, 5, 6])
        )
        await batcher.stop()
        assert batcher.stats().batches == 1 and batcher.stats().batch_sizes == {6: 1}
        return list(results)

    assert run(main) == [[10, 20], [30], [40, 50, 60]]
    assert len(fake.calls) == 1 and sorted(fake.calls[0]) == [1, 2, 3, 4, 5, 6]
    assert fake.threads and all(name.startswith("ethos-batch") for name in fake.threads)
    assert threading.current_thread().name not in fake.threads


def test_max_batch_is_respected_and_order_kept_when_a_request_is_split() -> None:
    fake = Recorder()

    async def main() -> tuple[list[int], list[int]]:
        batcher = MicroBatcher(fake, max_batch=4, max_wait_ms=50)
        batcher.start()
        big, small = await asyncio.gather(batcher.submit(list(range(10))), batcher.submit([99]))
        stats = batcher.stats()
        await batcher.stop()
        assert stats.items == 11 and stats.requests == 2 and stats.queue_depth == 0
        assert sum(size * n for size, n in stats.batch_sizes.items()) == 11
        return big, small

    big, small = run(main)
    assert big == [10 * i for i in range(10)] and small == [990]
    assert all(len(call) <= 4 for call in fake.calls)
    assert len(fake.calls) == 3  # 11 items in batches of at most 4
    assert [i for call in fake.calls for i in call][:10] == list(range(10))  # oldest first


def test_a_lone_request_waits_at_most_about_max_wait() -> None:
    async def main() -> float:
        batcher = MicroBatcher(Recorder(), max_batch=64, max_wait_ms=20)
        batcher.start()
        started = time.perf_counter()
        assert await batcher.submit([7]) == [70]
        elapsed = time.perf_counter() - started
        await batcher.stop()
        return elapsed

    assert run(main) < 1.0  # the 20 ms deadline, with slack for a busy CI machine


def test_queue_full_is_immediate_and_leaves_the_queue_usable() -> None:
    fake = Recorder()
    fake.gate.clear()  # the first batch blocks in the worker until released

    async def main() -> None:
        batcher = MicroBatcher(fake, max_batch=2, max_wait_ms=0, max_queue=3)
        batcher.start()
        first = asyncio.create_task(batcher.submit([1, 2]))  # taken into the blocked batch
        await in_flight(batcher, 1)
        queued = asyncio.create_task(batcher.submit([3, 4, 5]))  # fills the queue
        await asyncio.sleep(0.01)
        assert batcher.queue_depth == 3
        started = time.perf_counter()
        with pytest.raises(QueueFull) as raised:
            await batcher.submit([6])
        assert time.perf_counter() - started < 0.5 and raised.value.retry_after_s >= 1
        with pytest.raises(ValueError, match="split the request"):
            await batcher.submit(list(range(4)))  # could never fit
        fake.gate.set()
        assert await first == [10, 20] and await queued == [30, 40, 50]
        assert await batcher.submit([6]) == [60]
        assert batcher.stats().rejected_requests == 1
        await batcher.stop()

    run(main)


def test_an_exception_reaches_only_the_callers_of_its_batch() -> None:
    fake = Recorder(fail_on=13)
    fake.gate.clear()

    async def main() -> None:
        batcher = MicroBatcher(fake, max_batch=3, max_wait_ms=0)
        batcher.start()
        healthy_before = asyncio.create_task(batcher.submit([1]))
        await in_flight(batcher, 1)
        # Now queued behind the blocked first batch: [2, 13, 3] fill one batch, [4, 5] the next.
        same_batch = asyncio.create_task(batcher.submit([2]))
        failing = asyncio.create_task(batcher.submit([13, 3, 4]))
        later = asyncio.create_task(batcher.submit([5]))
        await asyncio.sleep(0.01)
        fake.gate.set()
        assert await healthy_before == [10]
        with pytest.raises(ValueError, match="bad item 13"):
            await same_batch
        with pytest.raises(ValueError, match="bad item 13"):
            await failing
        assert await later == [50]
        stats = batcher.stats()
        assert stats.failed_batches == 1 and stats.queue_depth == 0
        await batcher.stop()

    run(main)
    assert [4] not in fake.calls and all(4 not in call for call in fake.calls)  # dropped


def test_wrong_result_count_is_an_error_for_that_batch() -> None:
    async def main() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items[:-1], max_wait_ms=0)
        batcher.start()
        with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
            await batcher.submit([1, 2])
        await batcher.stop()

    run(main)


def test_stop_drains_queued_work_then_refuses() -> None:
    fake = Recorder(delay_s=0.02)

    async def main() -> None:
        batcher = MicroBatcher(fake, max_batch=2, max_wait_ms=1000)
        batcher.start()
        pending = [asyncio.create_task(batcher.submit([i, i + 100])) for i in range(5)]
        await asyncio.sleep(0.01)
        await batcher.stop()  # does not wait out the 1 s max_wait: stopping flushes at once
        assert all(task.done() for task in pending)
        assert [task.result() for task in pending] == [[10 * i, 10 * (i + 100)] for i in range(5)]
        with pytest.raises(BatcherStopped):
            await batcher.submit([1])

    started = time.perf_counter()
    run(main)
    assert time.perf_counter() - started < 5


def test_cancelled_request_gives_back_its_queue_slots() -> None:
    fake = Recorder()
    fake.gate.clear()

    async def main() -> None:
        batcher = MicroBatcher(fake, max_batch=1, max_wait_ms=0, max_queue=4)
        batcher.start()
        running = asyncio.create_task(batcher.submit([1]))
        await in_flight(batcher, 1)
        doomed = asyncio.create_task(batcher.submit([2, 3, 4]))
        await asyncio.sleep(0.01)
        assert batcher.queue_depth == 3
        doomed.cancel()
        await asyncio.sleep(0.01)
        assert batcher.queue_depth == 0
        fake.gate.set()
        assert await running == [10]
        assert await batcher.submit([5]) == [50]
        await batcher.stop()

    run(main)
    assert [2] not in fake.calls


def test_empty_submit_and_callback() -> None:
    seen: list[tuple[int, float]] = []

    async def main() -> None:
        batcher = MicroBatcher(
            Recorder(), max_wait_ms=0, on_batch=lambda size, s: seen.append((size, s))
        )
        batcher.start()
        assert await batcher.submit([]) == []
        assert await batcher.submit([1, 2]) == [10, 20]
        await batcher.stop()

    run(main)
    assert len(seen) == 1 and seen[0][0] == 2 and seen[0][1] >= 0


@pytest.mark.parametrize(
    ("oldest", "last_end", "gap", "missing", "expected"),
    [
        (1.0, 2.0, 0.001, 10, 0.0),  # arrived while the previous batch ran: go now
        (3.0, 2.0, None, 10, 0.005),  # no traffic history yet: the full window
        (3.0, 2.0, 0.010, 10, 0.0),  # requests 10 ms apart, window 5 ms: company won't come
        (3.0, 2.0, 0.0002, 10, 0.002),  # 10 missing items, 0.2 ms apart: wait about 2 ms
        (3.0, 2.0, 0.001, 31, 0.005),  # many missing: capped at the window
        (3.0, 2.0, 0.001, 0, 0.0),  # the batch is full
    ],
)
def test_the_batch_window_adapts_to_traffic(
    oldest: float, last_end: float, gap: float | None, missing: int, expected: float
) -> None:
    window = batch_window_s(
        oldest_arrival=oldest, last_batch_end=last_end, gap_s=gap, max_wait_s=0.005, missing=missing
    )
    assert window == pytest.approx(expected)


def test_a_full_queue_batches_similar_lengths_with_the_oldest_first() -> None:
    fake = Recorder()

    async def main() -> None:
        batcher = MicroBatcher(fake, max_batch=3, max_wait_ms=0, length_of=lambda x: x)
        batcher.start()
        fake.gate.clear()  # the first batch blocks, so the rest queue up behind it
        first = asyncio.ensure_future(batcher.submit([50]))
        await in_flight(batcher, 1)
        rest = [asyncio.ensure_future(batcher.submit([n])) for n in (7, 100, 9, 98, 8, 101)]
        await asyncio.sleep(0.01)
        fake.gate.set()
        await asyncio.gather(first, *rest)
        await batcher.stop()

    run(main)
    assert fake.calls[0] == [50]
    # 7 is the oldest waiting: it goes first with the two closest in length (9, 8); the next
    # batch starts from the oldest left (100) with its neighbours (98, 101).
    assert fake.calls[1][0] == 7 and sorted(fake.calls[1]) == [7, 8, 9]
    assert sorted(fake.calls[2]) == [98, 100, 101]
