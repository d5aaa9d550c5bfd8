"""Per-key token buckets: burst, refill arithmetic, independence, memory bound, threads."""

from __future__ import annotations

import threading

import pytest

from ethos.serving.ratelimit import SWEEP_INTERVAL_S, RateLimiter, retry_after_seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _drain(limiter: RateLimiter, key: str, rate: int) -> int:
    """Take tokens until refused; how many were granted."""
    granted = 0
    while limiter.check(key, rate) is None:
        granted += 1
        assert granted <= rate
    return granted


def test_burst_is_one_minutes_allowance_then_refill_is_rate_over_60() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert _drain(limiter, "k", 60) == 60
    assert limiter.check("k", 60) == pytest.approx(1.0)  # 1 token/s: a full second to wait
    clock.now += 0.25
    assert limiter.check("k", 60) == pytest.approx(0.75)
    clock.now += 0.75
    assert limiter.check("k", 60) is None
    assert limiter.check("k", 60) == pytest.approx(1.0)
    clock.now += 10
    assert _drain(limiter, "k", 60) == 10


def test_slow_rate_waits_longer() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert _drain(limiter, "k", 3) == 3
    assert limiter.check("k", 3) == pytest.approx(20.0)  # 3/min: one token every 20 s
    clock.now += 19.0
    assert limiter.check("k", 3) == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.check("k", 3) is None


def test_refused_requests_take_nothing_and_refill_is_capped() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    _drain(limiter, "k", 120)
    for _ in range(50):  # hammering while limited does not push the wait further out
        assert limiter.check("k", 120) == pytest.approx(0.5)
    clock.now += 3600  # an hour idle refills to capacity, not beyond
    assert _drain(limiter, "k", 120) == 120


def test_keys_are_independent_and_now_overrides_the_clock() -> None:
    limiter = RateLimiter(clock=lambda: 0.0)
    assert _drain(limiter, "a", 2) == 2
    assert limiter.check("b", 2) is None
    assert limiter.check("a", 2, now=0.0) == pytest.approx(30.0)
    assert limiter.check("a", 2, now=30.0) is None


def test_a_lowered_rate_shrinks_the_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert limiter.check("k", 600) is None  # 599 left at the old rate
    assert _drain(limiter, "k", 5) == 5


def test_a_clock_that_steps_back_refills_nothing() -> None:
    limiter = RateLimiter()
    assert _drain_at(limiter, now=50.0) == 2
    assert limiter.check("k", 2, now=10.0) == pytest.approx(30.0)
    assert limiter.check("k", 2, now=79.0) == pytest.approx(1.0)


def _drain_at(limiter: RateLimiter, now: float) -> int:
    granted = 0
    while limiter.check("k", 2, now=now) is None:
        granted += 1
    return granted


def test_full_idle_buckets_are_dropped() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for i in range(1000):
        limiter.check(f"key-{i}", 60)
    assert len(limiter) == 1000
    clock.now += SWEEP_INTERVAL_S / 2
    limiter.check("busy", 60)
    assert len(limiter) == 1001  # not full yet: kept
    clock.now += SWEEP_INTERVAL_S / 2
    assert _drain(limiter, "busy", 60) == 60  # refilled by 30 s of idleness, capped at 60
    assert len(limiter) == 1  # "busy" (used 30 s ago) is kept; the other 1000 were forgotten
    assert "1 active keys" in repr(limiter)


def test_threads_never_get_more_than_the_allowance() -> None:
    limiter = RateLimiter(clock=lambda: 0.0)
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = sum(limiter.check("shared", 500) is None for _ in range(200))
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 500


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter().check("k", 0)


@pytest.mark.parametrize(("wait", "header"), [(0.0, 1), (0.01, 1), (1.0, 1), (1.2, 2), (20.0, 20)])
def test_retry_after_rounds_up_to_at_least_one_second(wait: float, header: int) -> None:
    assert retry_after_seconds(wait) == header
