"""Sweep points as Ray tasks: a local Ray instance or a running cluster.

Each point is one task running :func:`~ethos.sweep.point.run_point` (the same job the in-process
sweep runs) with declared resources: ``num_cpus`` (``--cpus-per-point``, torch capped to as many
threads) and optionally ``num_gpus``. The driver collects outcomes as they finish; measuring a
point, the page and sweep.json stay with the driver (:mod:`ethos.sweep.runner`).

Tasks run **at most once** (``max_retries=0``, no retry on exceptions): a point appends its "run"
and "decision" entries to the append-only ledger as it goes, so a retry would record a second run
of the same point, and a point that killed its worker (out of memory) would most likely kill the
next one too. A worker that dies makes its point ``failed`` with the reason; its unfinished run
folder is moved into ``runs/.failed/`` (see :mod:`ethos.sweep.point`).

Ray is imported only here, and only when a sweep asks for it, so ``ethos --help`` and the
in-process sweep never load it. An address is probed with a plain TCP connection first:
``ray.init`` retries an address that does not answer for minutes.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ethos.errors import EthosError
from ethos.ray_connect import CONNECT_TIMEOUT_S, LOCAL, connected, first_line
from ethos.sweep.point import PointJob, PointOutcome, read_claim, run_point

MAX_RETRIES = 0
"""Points run at most once: see the module docstring."""
FORWARDED_ENV = (
    "ETHOS_LEDGER_HMAC_KEY",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "TOKENIZERS_PARALLELISM",
)
"""Set on the driver, these are set for the tasks of a cluster too: a worker must sign ledger
entries with the same key and stay offline when the driver is (a local instance inherits them)."""


@dataclass(frozen=True)
class RaySession:
    """A connection to Ray for one sweep, and what each point asks of it."""

    ray: ModuleType
    address: str
    cpus_per_point: float
    gpus_per_point: float
    env: dict[str, str]

    def describe(self) -> str:
        """One line for the sweep's log: where, and how many points fit at once."""
        resources = self.ray.cluster_resources()
        cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
        fit = int(cpus // self.cpus_per_point)
        if self.gpus_per_point:
            fit = min(fit, int(gpus // self.gpus_per_point))
        each = f"{self.cpus_per_point:g} CPU" + (
            f" + {self.gpus_per_point:g} GPU" if self.gpus_per_point else ""
        )
        where = "a local Ray instance" if self.address == LOCAL else f"Ray at {self.address}"
        return f"on {where} ({cpus:g} CPUs, {gpus:g} GPUs): {each} per point, up to {fit} at once"

    def run(self, jobs: Sequence[PointJob], *, claims: Path) -> Generator[PointOutcome, None, None]:
        """Submit every job as a task; yield each outcome as its task ends (any order).

        A task that ends without an outcome (its worker died, its node was lost) yields a failed
        outcome that names the reason and the run folder the point had claimed. Leaving early
        (Ctrl-C, an error in the caller) cancels the tasks still running.
        """
        ray = self.ray
        options: dict[str, Any] = {
            "num_cpus": self.cpus_per_point,
            "max_retries": MAX_RETRIES,
            "retry_exceptions": False,
        }
        if self.gpus_per_point:
            options["num_gpus"] = self.gpus_per_point
        if self.env:
            options["runtime_env"] = {"env_vars": self.env}
        remote = ray.remote(_run_task).options(**options)
        by_ref = {remote.remote(job): job for job in jobs}
        pending = list(by_ref)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    job = by_ref[ref]
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        yield _lost(job, exc, ray, claims)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def ledger_url_for_workers(ledger_url: str | None) -> str:
    """The ledger URL resolved on the driver (option, else ``$ETHOS_LEDGER_URL``, else the
    default file), so every worker appends to the ledger the in-process sweep would use,
    wherever it runs, instead of resolving a default of its own."""
    from ethos.governance.ledger_store import resolve_url

    return resolve_url(ledger_url).render_as_string(hide_password=False)


def _run_task(job: PointJob) -> PointOutcome:
    """The task body on a worker: cap torch's threads to the point's CPUs, then run the point."""
    if job.threads is not None:
        import torch

        torch.set_num_threads(job.threads)

    def log(message: str) -> None:
        print(f"[{job.index + 1}] {job.label}: {message}", flush=True)

    return run_point(job, log=log)


def _lost(job: PointJob, exc: BaseException, ray: ModuleType, claims: Path) -> PointOutcome:
    """A failed outcome for a task that returned none."""
    errors = ray.exceptions
    claim = read_claim(claims, job.index) or {}
    worker = f" (pid {claim['pid']} on {claim.get('host')})" if "pid" in claim else ""
    if isinstance(exc, errors.OutOfMemoryError):
        why = f"Ray's memory monitor killed the worker running this point{worker}"
    elif isinstance(exc, errors.WorkerCrashedError):
        why = f"the Ray worker running this point died{worker}: killed, out of memory or crashed"
    elif isinstance(exc, errors.NodeDiedError):
        why = f"the Ray node running this point was lost{worker}"
    elif isinstance(exc, errors.TaskCancelledError):
        why = "the point's Ray task was cancelled"
    elif isinstance(exc, errors.RayTaskError):
        why = f"the point's Ray task failed on the worker: {first_line(exc.cause or exc)}"
    else:
        why = f"Ray lost the point's task: {type(exc).__name__}: {first_line(exc)}"
    return PointOutcome(
        job.index,
        "failed",
        run_path=claim.get("run"),
        error=f"{why}; not retried (points run at most once)",
    )


@contextmanager
def ray_session(
    address: str,
    *,
    cpus_per_point: float = 1.0,
    gpus_per_point: float = 0.0,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> Iterator[RaySession]:
    """Connect to Ray for a sweep: ``"local"`` starts an instance here, an address connects.

    If this process is already connected (the caller ran ``ray.init``), that connection is used
    and left open; otherwise the one opened here is shut down at the end. A cluster without the
    CPUs or GPUs one point asks for is refused here, since its tasks would wait forever.
    """
    if cpus_per_point <= 0 or gpus_per_point < 0:
        raise EthosError(
            f"a point needs more than 0 CPUs and at least 0 GPUs, not {cpus_per_point:g} and "
            f"{gpus_per_point:g}",
            hint="give --cpus-per-point 1 (or more), --gpus-per-point 0 (or more)",
        )
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    with connected(address, purpose="a sweep with --ray", timeout_s=connect_timeout_s) as ray:
        session = RaySession(
            ray,
            address,
            cpus_per_point,
            gpus_per_point,
            env if address != LOCAL else {},
        )
        _check_resources(session)
        yield session


def _check_resources(session: RaySession) -> None:
    resources = session.ray.cluster_resources()
    for name, wanted, option in (
        ("CPU", session.cpus_per_point, "--cpus-per-point"),
        ("GPU", session.gpus_per_point, "--gpus-per-point"),
    ):
        have = resources.get(name, 0)
        if wanted and have < wanted:
            raise EthosError(
                f"a point asks for {wanted:g} {name}s ({option}) but the Ray cluster has "
                f"{have:g}: its tasks would wait forever",
                hint=f"lower {option}, or add nodes with {name}s to the cluster",
            )
