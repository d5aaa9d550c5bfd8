"""Per-key request limits for `ethos serve`: one token bucket per API key, in the serving database.

A key allowed ``rate_per_minute`` requests gets a bucket of that many tokens, refilled at
``rate_per_minute / 60`` tokens a second; each request takes one. A quiet client can therefore
burst up to a minute's allowance at once, and a steady one is held to its rate.

The bucket is a row of the serving database, updated in one atomic statement per request
(:meth:`ethos.serving.store.ServingStore.take_token`), so every worker process of a server and
every replica behind a load balancer draws on the same bucket: a key gets its rate once, not once
per process. There is deliberately no in-process cache of tokens: any share of the bucket handed
to a process ahead of time could be spent there while another process spends the rest, which
would let a key exceed its limit. The price is one small write per request (measured 0.13 ms
on SQLite, 0.51 ms on PostgreSQL on loopback; docs/serving.md, "Workers and replicas"); a
database that does not answer makes the request fail with 503 rather than pass unchecked.

One row per key that has made a request; keys are created by an administrator, so the table
stays as small as the key list.
"""

from __future__ import annotations

import math

from ethos.serving.store import ServingStore

__all__ = ["RateLimiter", "retry_after_seconds"]


class RateLimiter:
    """Token buckets keyed by API key id, shared through ``store`` by every process using it.

    Thread-safe (each check is its own database transaction). Tests may give ``now`` to
    :meth:`check` (seconds on any one scale); otherwise the database's clock is used.
    """

    def __init__(self, store: ServingStore) -> None:
        self._store = store

    def check(self, key_id: str, rate_per_minute: int, now: float | None = None) -> float | None:
        """Take one token for ``key_id``: None when the request may go ahead, else the seconds
        until a token is available (for ``Retry-After``; see :func:`retry_after_seconds`).

        A refused request takes nothing, so a client that retries after the returned wait
        succeeds. Tokens refill continuously: after ``t`` seconds a bucket holds
        ``min(rate_per_minute, tokens + t * rate_per_minute / 60)``; a lowered rate shrinks a
        fuller bucket at once. Raises :class:`~ethos.serving.store.StoreUnavailable` when the
        database does not answer.
        """
        if rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute must be positive, not {rate_per_minute}")
        per_second = rate_per_minute / 60.0
        granted, tokens = self._store.take_token(
            key_id, float(rate_per_minute), per_second, now=now
        )
        if granted:
            return None
        return (1.0 - tokens) / per_second

    def __repr__(self) -> str:
        return f"RateLimiter(shared through {self._store.url})"


def retry_after_seconds(wait_s: float) -> int:
    """The ``Retry-After`` header value for a wait: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait_s))
