"""One grid point as one job: what a sweep runs for a point, wherever it runs.

The in-process sweep and the Ray sweep run the same :func:`run_point` on the same
:class:`PointJob`; only the place differs. A job carries everything the point needs (its whole
config, the policy, the resolved ledger URL, the actor) so that a worker on another machine needs
nothing from the driver but the job. It returns a :class:`PointOutcome`: plain values that cross a
process boundary, never an exception, so a point that raises is a result and the sweep goes on.

A point's run folder must never stay half-written in ``OUT/runs``. ``run_point`` tells where its
folder is as soon as training creates it (a *claim*, also written to a file when the job runs on
a worker that may be killed), and :func:`set_aside` moves an unfinished folder (no
``manifest.json``: training never finished) into ``runs/.failed/``, where it can still be read or
resumed (`ethos train --resume`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ethos.config import RunConfig, resolve_relative_paths
from ethos.errors import EthosError
from ethos.rundir import MANIFEST, RunDir, atomic_write_text
from ethos.sweep.grid import GridPoint

FAILED = ".failed"
"""Below ``OUT/runs``: where the unfinished folders of failed points are moved."""


@dataclass(frozen=True)
class PointJob:
    """What one point needs to run anywhere; every path in it is absolute.

    ``config`` already writes into the sweep's ``runs/``; ``claims`` (a folder) asks the job to
    record its run folder in ``claims/<index>.json`` the moment it exists, so the driver can find
    it even if the worker dies; ``threads`` caps torch's CPU threads (the CPUs the point was given).
    """

    index: int
    label: str
    config: RunConfig
    policy: str
    ledger_url: str | None
    actor: str | None
    quiet: bool = True
    claims: str | None = None
    threads: int | None = None


@dataclass
class PointOutcome:
    """What a point's run came to: plain values that survive pickling to the driver."""

    index: int
    status: Literal["done", "failed"]
    run_path: str | None = None
    welfare: float | None = None
    decision: str | None = None
    broken: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float | None = None


def make_jobs(
    points: Sequence[GridPoint],
    runs: Path,
    *,
    policy: str,
    ledger_url: str | None,
    actor: str | None,
    quiet: bool,
    claims: Path | None = None,
    threads: int | None = None,
) -> list[PointJob]:
    """One job per point, writing into ``runs``; paths are made absolute here, since a worker's
    working folder may differ from this one."""
    if Path(policy).is_file():
        policy = str(Path(policy).resolve())
    return [
        PointJob(
            index=p.index,
            label=p.label,
            config=resolve_relative_paths(p.config, Path.cwd()).model_copy(
                update={"output_dir": runs}
            ),
            policy=policy,
            ledger_url=ledger_url,
            actor=actor,
            quiet=quiet,
            claims=str(claims) if claims is not None else None,
            threads=threads,
        )
        for p in points
    ]


def run_point(job: PointJob, *, log: Callable[[str], Any]) -> PointOutcome:
    """The governed run of one point (:func:`~ethos.pipeline.run_pipeline`), as an outcome.

    An exception from the run is caught and described (the sweep goes on); Ctrl-C and other
    ``BaseException`` propagate.
    """
    from ethos import pipeline

    started = time.perf_counter()
    claimed: list[Path] = []

    def claim(run: RunDir) -> None:
        # train() calls this right after creating the folder, before any data are read.
        claimed.append(run.path)
        if job.claims is not None:
            write_claim(Path(job.claims), job.index, run.path)

    try:
        result = pipeline.run_pipeline(
            job.config,
            policy=job.policy,
            ledger_url=job.ledger_url,
            actor=job.actor,
            quiet=job.quiet,
            log=log,
            prepare=claim,
        )
    except Exception as exc:  # a failed point is a result
        return PointOutcome(
            job.index,
            "failed",
            run_path=str(claimed[-1]) if claimed else None,
            error=describe(exc),
            seconds=_since(started),
        )
    return PointOutcome(
        job.index,
        "done",
        run_path=str(result.run.path),
        welfare=result.welfare,
        decision=result.decision,
        broken=list(result.broken),
        seconds=_since(started),
    )


def write_claim(claims: Path, index: int, run: Path) -> None:
    """Record which run folder point ``index`` is writing, and which process writes it."""
    claims.mkdir(parents=True, exist_ok=True)
    record = {"run": str(run), "pid": os.getpid(), "host": socket.gethostname()}
    atomic_write_text(claims / f"{index}.json", json.dumps(record) + "\n")


def read_claim(claims: Path, index: int) -> dict[str, Any] | None:
    """The claim of point ``index`` (``run``, ``pid``, ``host``), or None if it made none."""
    try:
        record = json.loads((claims / f"{index}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def unfinished(runs: Path) -> list[Path]:
    """Run folders in ``runs`` that have no manifest: killed, failed or still training."""
    if not runs.is_dir():
        return []
    return sorted(
        p
        for p in runs.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not (p / MANIFEST).is_file()
    )


def set_aside(run: Path) -> Path | None:
    """Move an unfinished run folder into ``runs/.failed/`` and return where it is now.

    A finished one stays (returned as is); one that is gone (training removes a run that failed
    before its first checkpoint) is None. The move is one rename, so ``runs/`` never shows a
    folder half moved.
    """
    if not run.is_dir():
        return None
    if (run / MANIFEST).is_file():
        return run
    target = run.parent / FAILED / run.name
    target.parent.mkdir(exist_ok=True)
    if target.exists():  # a name already set aside (cannot happen for fresh run ids)
        shutil.rmtree(target)
    os.replace(run, target)
    return target


def describe(exc: BaseException) -> str:
    """An error for sweep.json: an EthosError's own message, else the type, text and place."""
    if isinstance(exc, EthosError):
        return exc.message
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {Path(frame[0].filename).name}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 1)
