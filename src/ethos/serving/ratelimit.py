"""Per-key request limits for `ethos serve`: one token bucket per API key, in this process.

A key allowed ``rate_per_minute`` requests gets a bucket of that many tokens, refilled at
``rate_per_minute / 60`` tokens a second; each request takes one. A quiet client can therefore
burst up to a minute's allowance at once, and a steady one is held to its rate. The limit is per
process: with ``--workers N`` a key can reach N times its rate (each worker has its own buckets),
which bounds abuse without a shared store on the request path.

A full bucket is the same as no bucket (a new one starts full), so buckets that have refilled
are dropped; memory stays proportional to the keys active in about the last minute.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimiter", "retry_after_seconds"]

SWEEP_INTERVAL_S = 60.0
"""How often (at most) full buckets are dropped. Any bucket refills completely in 60 s."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by API key id; thread-safe.

    ``clock`` returns seconds on a monotonic scale (default :func:`time.monotonic`); tests pass
    a fake one, or give ``now`` to :meth:`check`.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._last_sweep: float | None = None

    def check(self, key_id: str, rate_per_minute: int, now: float | None = None) -> float | None:
        """Take one token for ``key_id``: None when the request may go ahead, else the seconds
        until a token is available (for ``Retry-After``; see :func:`retry_after_seconds`).

        A refused request takes nothing, so a client that retries after the returned wait
        succeeds. Tokens refill continuously: after ``t`` seconds a bucket holds
        ``min(rate_per_minute, tokens + t * rate_per_minute / 60)``.
        """
        if rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute must be positive, not {rate_per_minute}")
        if now is None:
            now = self._clock()
        capacity = float(rate_per_minute)
        per_second = rate_per_minute / 60.0
        with self._lock:
            self._sweep(now)
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(tokens=capacity, updated=now)
            else:
                elapsed = max(0.0, now - bucket.updated)  # a clock that steps back refills nothing
                # min() also shrinks a bucket whose key's rate was lowered.
                bucket.tokens = min(capacity, bucket.tokens + elapsed * per_second)
                bucket.updated = max(bucket.updated, now)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / per_second

    def _sweep(self, now: float) -> None:
        """Drop buckets that have refilled completely (caller holds the lock)."""
        if self._last_sweep is not None and now - self._last_sweep < SWEEP_INTERVAL_S:
            return
        self._last_sweep = now
        # With capacity r and refill r/60 per second, every bucket is full 60 s after its last
        # use, whatever its rate, so idleness alone decides.
        idle = [k for k, b in self._buckets.items() if now - b.updated >= SWEEP_INTERVAL_S]
        for key_id in idle:
            del self._buckets[key_id]

    def __len__(self) -> int:
        """How many buckets are held (keys seen recently)."""
        with self._lock:
            return len(self._buckets)

    def __repr__(self) -> str:
        return f"RateLimiter({len(self)} active keys)"


def retry_after_seconds(wait_s: float) -> int:
    """The ``Retry-After`` header value for a wait: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait_s))
