"""Where shards run: in this process, or as tasks on Ray (a local instance or a cluster).

Both executors take the same function and the same stream of shards, so a laptop and a cluster
run the same code and return the same results; only the place of execution differs. Ray is the
engine because ethos's sweeps run on it too: one engine to install, secure and operate (see
docs/genome.md). It is imported only when asked for, so ``ethos.genome`` works without it.

The Ray executor keeps at most ``max_in_flight`` shards submitted at a time, so a streamed
genome never piles up in Ray's object store: memory stays bounded however large the FASTA.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Protocol, TypeVar

from ethos.genome.errors import GenomeError
from ethos.ray_connect import CONNECT_TIMEOUT_S, connected

T = TypeVar("T")
R = TypeVar("R")

#: How long an address may take to accept a TCP connection before it counts as not answering.
DEFAULT_CONNECT_TIMEOUT_S = CONNECT_TIMEOUT_S


class ShardExecutor(Protocol):
    """Applies one function to every shard; results may come back in any order."""

    def map(self, fn: Callable[[T], R], shards: Iterable[T]) -> Iterator[R]:
        """``fn(shard)`` for every shard, consumed lazily."""
        ...


class InProcessExecutor:
    """Runs shards one after another in this process: no Ray, same shards, same results."""

    def map(self, fn: Callable[[T], R], shards: Iterable[T]) -> Iterator[R]:
        """``fn(shard)`` for every shard, in order."""
        for shard in shards:
            yield fn(shard)

    def __repr__(self) -> str:
        return "<InProcessExecutor>"


def _apply(fn: Callable[[T], R], shard: T) -> R:
    return fn(shard)


class RayExecutor:
    """Runs shards as Ray tasks (one CPU each), at most ``max_in_flight`` submitted at once."""

    def __init__(self, ray: ModuleType, *, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise GenomeError(f"max_in_flight={max_in_flight} must be positive")
        self._ray = ray
        self.max_in_flight = max_in_flight

    def map(self, fn: Callable[[T], R], shards: Iterable[T]) -> Iterator[R]:
        """``fn(shard)`` for every shard on Ray workers, in completion order.

        A task's exception is re-raised as itself (not wrapped); when the caller stops early or
        a shard fails, the tasks still pending are cancelled.
        """
        ray = self._ray
        remote = ray.remote(num_cpus=1)(_apply)
        pending: list[Any] = []
        try:
            for shard in shards:
                if len(pending) >= self.max_in_flight:
                    done, pending = ray.wait(pending, num_returns=1)
                    yield from self._get(done)
                pending.append(remote.remote(fn, shard))
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield from self._get(done)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def _get(self, refs: list[Any]) -> list[Any]:
        try:
            return list(self._ray.get(refs))
        except self._ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else None
            raise (cause or exc) from None

    def __repr__(self) -> str:
        return f"<RayExecutor max_in_flight={self.max_in_flight}>"


@contextmanager
def open_executor(
    ray_address: str | None,
    *,
    workers: int = 2,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> Iterator[ShardExecutor]:
    """The executor for ``ray_address``: None in-process, ``"local"`` a private Ray, else a cluster.

    ``"local"`` starts Ray with ``workers`` CPUs (and shuts it down afterwards); an address
    connects to a running cluster. If this process is already connected to Ray (the caller
    ran ``ray.init``), that connection is used and left open. At most twice as many shards as
    the cluster has CPUs are in flight at once.
    """
    if workers < 1:
        raise GenomeError(f"workers={workers} must be at least 1")
    if ray_address is None:
        yield InProcessExecutor()
        return
    with connected(
        ray_address,
        purpose="running shards on Ray",
        local_cpus=workers,
        log_to_driver=False,
        timeout_s=connect_timeout_s,
        error=GenomeError,
    ) as ray:
        cpus = int(ray.cluster_resources().get("CPU", workers))
        yield RayExecutor(ray, max_in_flight=2 * max(cpus, 1))
