"""Micro-batching for the server: requests that arrive together share one forward pass.

A transformer forward pass on 32 short texts costs far less than 32 passes on one text each, so
the server collects the items of concurrent requests for a few milliseconds (``max_wait_ms``, or
until ``max_batch`` items wait) and hands them to ``process`` in one call. ``process`` runs in one
dedicated worker thread, never on the event loop, so a slow batch never blocks accepting,
authenticating or refusing the next requests; and one thread means one forward pass at a time,
which is what a CPU with a few cores does best anyway.

Adaptive window: waiting for company only pays when the worker is idle and company is coming.
Items that arrived while the previous batch ran have already waited, so they go at once; a lone
request under light traffic (the mean gap between requests longer than ``max_wait_ms``) goes at
once too; otherwise the first item waits for the batch to fill, at most ``max_wait_ms`` and at most
about as long as the missing items are expected to take to arrive (an exponentially weighted mean
of the gaps between requests, as Clipper's and Triton's dynamic batchers do with queue delay).

Batching by length: with ``length_of``, when more items wait than one batch holds, the oldest
request goes first and the rest of the batch is filled with the waiting requests closest to it in
length, so padding to the longest input wastes less; no request waits behind more than one batch
of newer ones (the oldest is always taken).

Back-pressure: at most ``max_queue`` items wait. A request that would go over is refused at once
with :class:`QueueFull` (the app answers 503 with Retry-After) instead of queueing into a timeout.

Isolation: a request's items may be split across consecutive batches, and come back in their own
order. An exception raised by ``process`` reaches the callers whose items were in that batch, and
no one else; the rest of such a caller's items are dropped, since its answer is already an error.

Hand-written: asyncio has queues but no batching queue with per-request futures, and the serving
libraries that batch (Ray Serve, TorchServe, Triton) are whole servers, not a class.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("ethos.serving")


class QueueFull(Exception):
    """The batcher's queue cannot take the request now; retry after ``retry_after_s``."""

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BatcherStopped(RuntimeError):
    """The batcher is stopping or stopped (or not started) and takes no new work."""


@dataclass(frozen=True)
class BatcherStats:
    """Counters for monitoring (Prometheus counters and a batch-size histogram).

    ``batch_sizes`` maps a batch size to how many batches had it, so a histogram with any bucket
    edges can be filled from it; ``process_seconds`` is the total time spent in ``process``.
    """

    batches: int
    items: int
    requests: int
    failed_batches: int
    rejected_requests: int
    queue_depth: int
    process_seconds: float
    batch_sizes: dict[int, int]

    @property
    def mean_batch_size(self) -> float:
        return self.items / self.batches if self.batches else 0.0


def batch_window_s(
    *,
    oldest_arrival: float,
    last_batch_end: float,
    gap_s: float | None,
    max_wait_s: float,
    missing: int,
) -> float:
    """Seconds the oldest waiting item may wait for company, counted from its arrival.

    0 when it arrived while the previous batch ran (it has waited already) or when requests come
    further apart than ``max_wait_s`` (company will not come in time); otherwise about as long as
    the ``missing`` items are expected to take (``gap_s``, the mean gap between requests), at most
    ``max_wait_s``. Without a gap estimate yet, ``max_wait_s``.
    """
    if oldest_arrival <= last_batch_end:
        return 0.0
    if gap_s is None:
        return max_wait_s
    if gap_s >= max_wait_s:
        return 0.0
    return min(max_wait_s, gap_s * max(missing, 0))


@dataclass(eq=False)
class _Request(Generic[T, R]):
    """One ``submit`` call: its items, the results filled in so far, and its future."""

    items: list[T]
    future: asyncio.Future[list[R]]
    enqueued_at: float
    results: list[Any] = field(default_factory=list)
    taken: int = 0  # items already handed to a batch
    done_items: int = 0

    @property
    def waiting(self) -> int:
        return len(self.items) - self.taken


class MicroBatcher(Generic[T, R]):
    """Collect items from concurrent ``submit`` calls into batches for ``process``.

    Args:
        process: maps a list of items to a list of results of the same length, in order. Runs in
            the batcher's one worker thread.
        max_batch: the most items in one ``process`` call.
        max_wait_ms: how long the oldest waiting item may wait for the batch to fill.
        max_queue: the most items waiting (not yet in a running batch) before ``submit``
            refuses with :class:`QueueFull`.
        on_batch: called on the event loop after each batch with (size, seconds in process), e.g.
            to observe a Prometheus histogram; its exceptions are logged, never raised.
        length_of: an item's length (e.g. characters or tokens), to batch similar lengths
            together when more items wait than fit in one batch; None keeps arrival order.
    """

    def __init__(
        self,
        process: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        on_batch: Callable[[int, float], None] | None = None,
        length_of: Callable[[T], int] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        if not max_wait_ms >= 0:
            raise ValueError(f"max_wait_ms must be 0 or more, got {max_wait_ms}")
        self.process = process
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.length_of = length_of
        self._gap_s: float | None = None  # EWMA of the seconds between submits
        self._last_submit: float | None = None
        self._last_batch_end = float("-inf")  # loop time the previous batch finished
        self._queue: deque[_Request[T, R]] = deque()
        self._depth = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._batches = 0
        self._items = 0
        self._requests = 0
        self._failed = 0
        self._rejected = 0
        self._seconds = 0.0
        self._sizes: Counter[int] = Counter()

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the collector on the running event loop (call from async code, e.g. a lifespan)."""
        if self._task is not None:
            raise RuntimeError("the batcher is already started")
        asyncio.get_running_loop()  # RuntimeError outside a loop: say so now, not at submit
        self._closing = False
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ethos-batch")
        self._task = asyncio.create_task(self._collect(), name="ethos-micro-batcher")

    async def stop(self) -> None:
        """Refuse new work, finish every item already queued, then release the worker thread."""
        if self._task is None:
            return
        self._closing = True
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            await self._task
        finally:
            self._task = None
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._closing

    # --- submitting ------------------------------------------------------------------------------

    async def submit(self, items: Sequence[T]) -> list[R]:
        """The results of ``items``, in order, once the batches holding them have run.

        Raises :class:`QueueFull` at once when the queue cannot take all of them,
        :class:`BatcherStopped` when the batcher is not running, and whatever ``process`` raised
        for a batch that held any of them.
        """
        items = list(items)
        if not items:
            return []
        if not self.running:
            raise BatcherStopped("the model is not accepting work (stopping, or not started)")
        if len(items) > self.max_queue:
            raise ValueError(
                f"{len(items)} items in one request but the queue holds at most {self.max_queue}; "
                "split the request"
            )
        if self._depth + len(items) > self.max_queue:
            self._rejected += 1
            raise QueueFull(
                f"{self._depth} items are waiting (at most {self.max_queue})",
                retry_after_s=self._retry_after(),
            )
        loop = asyncio.get_running_loop()
        request: _Request[T, R] = _Request(
            items=items,
            future=loop.create_future(),
            enqueued_at=loop.time(),
            results=[None] * len(items),
        )
        request.future.add_done_callback(lambda _: self._forget(request))
        self._note_arrival(request.enqueued_at)
        self._queue.append(request)
        self._depth += len(items)
        self._requests += 1
        assert self._wakeup is not None
        self._wakeup.set()
        return await request.future

    # --- monitoring ------------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Items waiting for a batch (those in the running batch not counted)."""
        return self._depth

    def stats(self) -> BatcherStats:
        return BatcherStats(
            batches=self._batches,
            items=self._items,
            requests=self._requests,
            failed_batches=self._failed,
            rejected_requests=self._rejected,
            queue_depth=self._depth,
            process_seconds=self._seconds,
            batch_sizes=dict(sorted(self._sizes.items())),
        )

    # --- internals -------------------------------------------------------------------------------

    def _retry_after(self) -> float:
        """Seconds until the queue has likely drained: waiting items x mean seconds per item."""
        per_item = self._seconds / self._items if self._items else 0.0
        return max(1.0, round(self._depth * per_item, 1))

    def _note_arrival(self, now: float) -> None:
        if self._last_submit is not None:
            gap = now - self._last_submit
            self._gap_s = gap if self._gap_s is None else 0.8 * self._gap_s + 0.2 * gap
        self._last_submit = now

    def _window_s(self) -> float:
        """How long the oldest waiting item may still wait for company (0: go now)."""
        return batch_window_s(
            oldest_arrival=self._queue[0].enqueued_at,
            last_batch_end=self._last_batch_end,
            gap_s=self._gap_s,
            max_wait_s=self.max_wait_ms / 1000,
            missing=self.max_batch - self._depth,
        )

    def _forget(self, request: _Request[T, R]) -> None:
        """A finished request (answered, failed or cancelled) gives back its unbatched items."""
        self._depth -= request.waiting
        request.taken = len(request.items)

    def _take(self) -> list[tuple[_Request[T, R], int]]:
        """Up to ``max_batch`` waiting items, oldest request first, a request split if needed."""
        while self._queue and (self._queue[0].future.done() or self._queue[0].waiting == 0):
            self._queue.popleft()
        if self.length_of is not None and self._depth > self.max_batch and self._queue:
            self._order_by_length()
        batch: list[tuple[_Request[T, R], int]] = []
        while self._queue and len(batch) < self.max_batch:
            request = self._queue[0]
            if request.future.done() or request.waiting == 0:
                self._queue.popleft()
                continue
            count = min(request.waiting, self.max_batch - len(batch))
            batch.extend((request, request.taken + k) for k in range(count))
            request.taken += count
            self._depth -= count
            if request.waiting == 0:
                self._queue.popleft()
        return batch

    def _order_by_length(self) -> None:
        """Oldest request first, then the others by closeness of length to it (stable)."""
        assert self.length_of is not None
        length_of = self.length_of
        oldest, *rest = self._queue

        def length(request: _Request[T, R]) -> int:
            return length_of(request.items[min(request.taken, len(request.items) - 1)])

        reference = length(oldest)
        rest.sort(key=lambda request: abs(length(request) - reference))
        self._queue = deque([oldest, *rest])

    async def _collect(self) -> None:
        try:
            await self._loop()
        except BaseException:
            # Cancelled or a bug: nobody may wait forever on a future this loop will not answer.
            self._fail_waiting(BatcherStopped("the model's batcher stopped unexpectedly"))
            raise

    def _fail_waiting(self, exc: BaseException) -> None:
        while self._queue:
            request = self._queue.popleft()
            if not request.future.done():
                request.future.set_exception(exc)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            while self._depth == 0:
                if self._closing:
                    return
                wakeup.clear()
                await wakeup.wait()
            # Wait for the batch to fill, but only while waiting pays (see the module docstring)
            # and never past the oldest item's deadline.
            while self._depth < self.max_batch and not self._closing and self._queue:
                remaining = self._queue[0].enqueued_at + self._window_s() - loop.time()
                if remaining <= 0:
                    break
                wakeup.clear()
                try:
                    await asyncio.wait_for(wakeup.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take()
            if batch:
                await self._run(batch, loop)
                self._last_batch_end = loop.time()
            else:  # only finished requests were left: let their callbacks give back the count
                await asyncio.sleep(0)

    async def _run(
        self, batch: list[tuple[_Request[T, R], int]], loop: asyncio.AbstractEventLoop
    ) -> None:
        items = [request.items[index] for request, index in batch]
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self._call, items)
        except BaseException as exc:  # delivered to this batch's callers, and only to them
            self._failed += 1
            delivered = exc if isinstance(exc, Exception) else BatcherStopped("batcher cancelled")
            for request in {id(r): r for r, _ in batch}.values():
                if not request.future.done():
                    request.future.set_exception(delivered)
            if not isinstance(exc, Exception):
                raise
            results = None
        seconds = time.perf_counter() - started
        self._batches += 1
        self._items += len(items)
        self._seconds += seconds
        self._sizes[len(items)] += 1
        if results is not None:
            for (request, index), result in zip(batch, results, strict=True):
                request.results[index] = result
                request.done_items += 1
                if request.done_items == len(request.items) and not request.future.done():
                    request.future.set_result(request.results)
        if self.on_batch is not None:
            try:
                self.on_batch(len(items), seconds)
            except Exception:
                log.exception("the batcher's on_batch callback failed")

    def _call(self, items: list[T]) -> list[R]:
        """``process`` in the worker thread, its answer checked for length."""
        results = list(self.process(items))
        if len(results) != len(items):
            raise RuntimeError(
                f"the batch function returned {len(results)} results for {len(items)} items"
            )
        return results
