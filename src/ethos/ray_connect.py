"""One way to reach Ray, for every part of ethos that runs work on it (sweeps, genome shards).

``"local"`` starts a private Ray instance on this machine and shuts it down afterwards; any other
address connects to a running cluster, which is probed with a plain TCP connection first because
``ray.init`` retries an address that does not answer for minutes. A process already connected
(the caller ran ``ray.init``) keeps its connection. Ray is imported only when asked for, so
nothing else in ethos needs it installed.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ethos.errors import EthosError

LOCAL = "local"
"""The address that starts a private Ray instance on this machine (shut down afterwards)."""
CONNECT_TIMEOUT_S = 5.0
"""How long an address may take to accept a TCP connection before it counts as not answering."""
RAY_HINT = "pip install 'ethos[scale]' (or: pip install 'ray[default]>=2.40')"


def first_line(exc: BaseException) -> str:
    """The first line of a Ray exception's text: Ray's own are pages long."""
    return (str(exc).strip().splitlines() or [""])[0]


def import_ray(purpose: str, *, error: type[EthosError] = EthosError) -> ModuleType:
    """Ray, or ``error`` saying that ``purpose`` needs it and how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise error(
            f"{purpose} needs the 'ray' package, which is not installed", hint=RAY_HINT
        ) from None


def check_address_answers(
    address: str, *, timeout_s: float = CONNECT_TIMEOUT_S, error: type[EthosError] = EthosError
) -> None:
    """Fail within ``timeout_s`` when ``host:port`` (or ``ray://host:port``) accepts no TCP
    connection; ``auto`` (the cluster recorded on this machine) is left to Ray, which fails
    fast without one."""
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise error(
            f"Ray address {address!r} is not host:port",
            hint=f"give e.g. 10.0.0.5:6379 or ray://head:10001, or {LOCAL!r} to start Ray here",
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise error(
            f"the Ray cluster at {address!r} does not answer "
            f"({exc.strerror or exc or 'timed out'} within {timeout_s:g} s)",
            hint="start it with `ray start --head`, check the address and port (the GCS port, "
            f"6379 by default, or ray://HOST:10001), or give {LOCAL!r} to start Ray here",
        ) from None


@contextmanager
def connected(
    address: str,
    *,
    purpose: str,
    local_cpus: int | None = None,
    log_to_driver: bool = True,
    timeout_s: float = CONNECT_TIMEOUT_S,
    error: type[EthosError] = EthosError,
) -> Iterator[ModuleType]:
    """The ``ray`` module, connected to ``address`` for the duration of the block.

    ``local_cpus`` caps a local instance (None: all this machine's CPUs). Usage statistics are
    off unless the environment says otherwise: a run of ethos never phones home.
    """
    ray = import_ray(purpose, error=error)
    if address != LOCAL:
        check_address_answers(address, timeout_s=timeout_s, error=error)
    started = not ray.is_initialized()
    if started:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            if address == LOCAL:
                ray.init(
                    num_cpus=local_cpus,
                    include_dashboard=False,
                    log_to_driver=log_to_driver,
                    configure_logging=False,
                )
            else:
                ray.init(address=address, log_to_driver=log_to_driver, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise error(
                f"could not connect to Ray at {address!r}: {first_line(exc)}",
                hint=f"start a cluster with `ray start --head`, or give {LOCAL!r}",
            ) from None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
