"""Shared fixtures: one small simulated session per SNR, BLAS on one thread.

OpenBLAS's default two threads spin against each other on a shared two-core machine and make a
22x40000 matrix product 400x slower; one thread is what these small problems want.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("MNE_DONTWRITE_HOME", "true")

import pytest
from threadpoolctl import threadpool_limits

from ethos.neuro import MotorImageryData, SimulationConfig, simulate_motor_imagery


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def high_snr() -> MotorImageryData:
    """Left vs right hand, 20 trials each, 10 dB in-band SNR, ERD depth 0.7."""
    return simulate_motor_imagery(SimulationConfig(trials_per_class=20, snr_db=10.0, seed=1))[0]


@pytest.fixture(scope="session")
def no_signal() -> MotorImageryData:
    """Same design with no class difference at all (ERD depth 0)."""
    config = SimulationConfig(trials_per_class=20, snr_db=10.0, erd_fraction=0.0, seed=2)
    return simulate_motor_imagery(config)[0]
