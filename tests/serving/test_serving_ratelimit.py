"""Per-key token buckets in the serving database: burst, refill arithmetic, independence, one
bucket for every process and thread (SQLite and PostgreSQL), the database's clock, and a database
that does not answer."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from ethos.serving.ratelimit import RateLimiter, retry_after_seconds
from ethos.serving.store import ServingStore, StoreUnavailable


@pytest.fixture
def limiter(store: ServingStore) -> RateLimiter:
    return RateLimiter(store)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "shared.db")
    return str(request.getfixturevalue("postgres_url"))


def _drain(limiter: RateLimiter, key: str, rate: int, now: float | None = 100.0) -> int:
    """Take tokens until refused; how many were granted."""
    granted = 0
    while limiter.check(key, rate, now=now) is None:
        granted += 1
        assert granted <= rate
    return granted


def test_burst_is_one_minutes_allowance_then_refill_is_rate_over_60(limiter: RateLimiter) -> None:
    assert _drain(limiter, "k", 60) == 60
    assert limiter.check("k", 60, now=100.0) == pytest.approx(1.0)  # 1 token/s: a second
    assert limiter.check("k", 60, now=100.25) == pytest.approx(0.75)
    assert limiter.check("k", 60, now=101.0) is None
    assert limiter.check("k", 60, now=101.0) == pytest.approx(1.0)
    assert _drain(limiter, "k", 60, now=111.0) == 10


def test_slow_rate_waits_longer(limiter: RateLimiter) -> None:
    assert _drain(limiter, "k", 3) == 3
    assert limiter.check("k", 3, now=100.0) == pytest.approx(20.0)  # 3/min: one every 20 s
    assert limiter.check("k", 3, now=119.0) == pytest.approx(1.0)
    assert limiter.check("k", 3, now=120.0) is None


def test_refused_requests_take_nothing_and_refill_is_capped(limiter: RateLimiter) -> None:
    _drain(limiter, "k", 120)
    for _ in range(50):  # hammering while limited does not push the wait further out
        assert limiter.check("k", 120, now=100.0) == pytest.approx(0.5)
    assert _drain(limiter, "k", 120, now=3700.0) == 120  # an hour idle refills to capacity


def test_keys_are_independent(limiter: RateLimiter) -> None:
    assert _drain(limiter, "a", 2, now=0.0) == 2
    assert limiter.check("b", 2, now=0.0) is None
    assert limiter.check("a", 2, now=0.0) == pytest.approx(30.0)
    assert limiter.check("a", 2, now=30.0) is None


def test_a_lowered_rate_shrinks_the_bucket(limiter: RateLimiter) -> None:
    assert limiter.check("k", 600, now=100.0) is None  # 599 left at the old rate
    assert _drain(limiter, "k", 5) == 5


def test_a_clock_that_steps_back_refills_nothing(limiter: RateLimiter) -> None:
    assert _drain(limiter, "k", 2, now=50.0) == 2
    assert limiter.check("k", 2, now=10.0) == pytest.approx(30.0)
    assert limiter.check("k", 2, now=79.0) == pytest.approx(1.0)


def test_without_now_the_database_clock_refills(limiter: RateLimiter, store: ServingStore) -> None:
    # 3 a minute: one token per 20 s, so the real time this takes cannot add one
    assert _drain(limiter, "k", 3, now=None) == 3
    wait = limiter.check("k", 3)
    assert wait is not None and 0.0 < wait <= 20.0  # refilled only by the moments since
    with store._relaxed.connect() as conn:  # stamped in epoch seconds, not some other scale
        stamped = conn.exec_driver_sql("SELECT updated_at FROM rate_buckets").scalar_one()
    assert abs(stamped - time.time()) < 60


def test_one_row_per_key_whatever_the_traffic(limiter: RateLimiter, store: ServingStore) -> None:
    for i in range(30):
        for key in ("a", "b", "c"):
            limiter.check(key, 5, now=float(i))
    with store._relaxed.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM rate_buckets").scalar_one() == 3


def test_processes_and_threads_share_one_bucket(url: str) -> None:
    """Eight threads, each with its own store (as eight worker processes would have), take 200
    tries each at a bucket of 500: exactly 500 are granted, on SQLite and on PostgreSQL."""
    stores = [ServingStore(url) for _ in range(8)]
    granted: list[int] = []
    lock = threading.Lock()

    def worker(store: ServingStore) -> None:
        limiter = RateLimiter(store)
        mine = sum(limiter.check("shared", 500, now=0.0) is None for _ in range(200))
        with lock:
            granted.append(mine)

    try:
        threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for store in stores:
            store.close()
    assert sum(granted) == 500
    assert sum(1 for g in granted if g > 0) > 1  # the bucket really was contended


def test_postgresql_keeps_time_on_the_server(postgres_url: str) -> None:
    with ServingStore(postgres_url) as store:
        limiter = RateLimiter(store)
        assert _drain(limiter, "k", 3, now=None) == 3
        wait = limiter.check("k", 3)
        assert wait is not None and 0.0 < wait <= 20.0


def test_a_database_that_does_not_answer_refuses_with_store_unavailable(tmp_path: Path) -> None:
    home = tmp_path / "db"
    home.mkdir()
    store = ServingStore(home / "serving.db")
    limiter = RateLimiter(store)
    try:
        assert limiter.check("k", 60, now=0.0) is None
        store.close()  # drop pooled connections, as a restart of the database would
        shutil.move(home, tmp_path / "moved")
        with pytest.raises(StoreUnavailable, match="unavailable") as caught:
            limiter.check("k", 60, now=0.0)
        assert caught.value.hint is not None and "503" in caught.value.hint
        shutil.move(tmp_path / "moved", home)
        assert limiter.check("k", 60, now=0.0) is None  # back: the same bucket, 58 left
        assert _drain(limiter, "k", 60, now=0.0) == 58
    finally:
        store.close()


def test_rate_must_be_positive(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError, match="positive"):
        limiter.check("k", 0)


@pytest.mark.parametrize(("wait", "header"), [(0.0, 1), (0.01, 1), (1.0, 1), (1.2, 2), (20.0, 20)])
def test_retry_after_rounds_up_to_at_least_one_second(wait: float, header: int) -> None:
    assert retry_after_seconds(wait) == header
