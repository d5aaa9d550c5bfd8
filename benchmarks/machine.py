"""How busy this machine is right now, recorded beside every benchmark figure.

The machines are shared and noisy: a figure means little without the load and the matmul rate
measured in the same run. Imported by the benchmark scripts, which run from this folder.
"""

from __future__ import annotations

import os
import time


def gflops(seconds: float = 2.0, size: int = 1024) -> float:
    """Best fp32 torch.mm GFLOP/s over ``seconds``: how much of the CPU a job gets right now."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return round(best, 1)


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 0.01."""
    return [round(x, 2) for x in os.getloadavg()]
