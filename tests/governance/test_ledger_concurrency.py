"""Several processes appending at once leave one valid chain, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections import defaultdict
from multiprocessing.synchronize import Barrier

from ethos.governance import Ledger

WORKERS = 4
PER_WORKER = 250


def _append_worker(url: str, worker: int, count: int, start: Barrier) -> None:
    """One writer process: its own connection pool, released together with the others."""
    with Ledger.open(url) as ledger:
        start.wait(timeout=60)
        for i in range(count):
            ledger.append(
                kind="run",
                actor=f"worker-{worker}",
                run_id=f"w{worker}-{i}",
                payload={"worker": worker, "i": i},
            )
            # A pause between appends, as between real runs: without it SQLite's busy handler
            # can let one process keep the lock for all its appends on a loaded machine (the
            # others sleep while it re-acquires), and the test would show no concurrency.
            time.sleep(0.002)


def test_concurrent_appenders_never_fork_the_chain(ledger_url: str) -> None:
    Ledger.open(ledger_url).close()  # create the schema up front; workers race on appends only
    # fork: the workers inherit the imported modules (starting four interpreters that each
    # import ethos would take longer than the appends on two cores); each opens its own engine.
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(WORKERS + 1)
    procs = [
        ctx.Process(target=_append_worker, args=(ledger_url, w, PER_WORKER, start))
        for w in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    try:
        start.wait(timeout=60)
        began = time.monotonic()
        for proc in procs:
            proc.join(timeout=240)
            assert proc.exitcode == 0, f"worker exited with {proc.exitcode}"
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    elapsed = time.monotonic() - began

    with Ledger.open(ledger_url) as ledger:
        report = ledger.verify()
        entries = ledger.entries()
    assert report.ok, report
    assert report.count == len(entries) == WORKERS * PER_WORKER
    assert [e.seq for e in entries] == list(range(1, WORKERS * PER_WORKER + 1))
    # every append landed once, and each worker's appends are in the order it made them
    seen: dict[int, list[int]] = defaultdict(list)
    for entry in entries:
        seen[entry.payload["worker"]].append(entry.payload["i"])
    assert dict(seen) == {w: list(range(PER_WORKER)) for w in range(WORKERS)}
    # the workers really overlapped: the chain switches writer more than once per worker
    writers = [entry.payload["worker"] for entry in entries]
    switches = sum(a != b for a, b in itertools.pairwise(writers))
    assert switches > WORKERS, f"appends did not interleave ({switches} switches)"
    print(f"{WORKERS}x{PER_WORKER} appends in {elapsed:.1f} s, {switches} writer switches")


def _open_and_append(url: str, worker: int, start: Barrier) -> None:
    start.wait(timeout=60)
    with Ledger.open(url) as ledger:
        ledger.append(kind="run", actor=f"worker-{worker}")


def test_processes_racing_to_create_a_new_ledger_share_one_schema(ledger_url: str) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(WORKERS)
    procs = [
        ctx.Process(target=_open_and_append, args=(ledger_url, w, start)) for w in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    with Ledger.open(ledger_url) as ledger:
        report = ledger.verify()
        actors = sorted(e.actor for e in ledger.entries())
    assert report.ok and report.count == WORKERS, report
    assert actors == [f"worker-{w}" for w in range(WORKERS)]
