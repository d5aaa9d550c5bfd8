"""Soak: 32 clients for 60 s against a live `ethos serve`: no 5xx, no growth, no leaks.

After a warm-up (the first batches allocate the allocator's pools, tokenizer caches and the
monitor's windows), the server's resident memory may not grow by more than 10 %, and its threads
and open file descriptors may not grow by more than the one or two a lazily filled pool adds.
Read from /proc, so Linux only.
Marked slow: it runs for over a minute by design.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, create_key

from ethos.datasets import compas

CLIENTS = 32
SOAK_S = 60.0
WARMUP_S = 10.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)"),
]


def _process(pid: int) -> dict[str, int]:
    """Resident memory (kB), threads and open file descriptors of a process."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"].strip()),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _texts(n: int = 200) -> list[str]:
    rows = compas().head(n)
    return [
        f"age: {r.age}; prior offences: {r.priors_count}; charge: {r.c_charge_desc}"
        for r in rows.itertuples()
    ]


async def _load(url: str, token: str, seconds: float) -> Counter[int]:
    """``CLIENTS`` clients posting one record each, back to back, for ``seconds``."""
    texts = _texts()
    codes: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60
    ) as client:

        async def worker(n: int) -> None:
            i = n
            while time.monotonic() < deadline:
                body = {"inputs": [{"text": texts[i % len(texts)]}]}
                codes[(await client.post("/v1/predict", json=body)).status_code] += 1
                i += CLIENTS

        await asyncio.gather(*(worker(n) for n in range(CLIENTS)))
    return codes


def test_32_clients_for_60_s_leave_no_errors_growth_or_leaks(server: LiveServer) -> None:
    token = create_key(server.db, "predict", name="soak")
    pid = server.process.pid
    warm = asyncio.run(_load(server.url, token, WARMUP_S))
    time.sleep(2)  # let the log writer drain what the warm-up queued
    before = _process(pid)
    codes = asyncio.run(_load(server.url, token, SOAK_S))
    server.wait_logged()
    time.sleep(2)
    after = _process(pid)
    print(f"warm-up {dict(warm)}, soak {dict(codes)}, before {before}, after {after}")
    assert set(codes) == {200}, codes  # no 5xx, no 429 (the key's rate is high), nothing else
    assert sum(codes.values()) > CLIENTS  # it did serve under load
    assert after["rss_kb"] <= 1.10 * before["rss_kb"], (before, after)
    # Thread pools (asyncio's default executor, anyio's worker threads) start threads lazily up
    # to fixed bounds, so one more may appear; a leak grows with the requests (thousands here).
    assert after["threads"] <= before["threads"] + 2, (before, after)
    assert after["fds"] <= before["fds"] + 2, (before, after)  # a pooled connection may open
