"""`ethos sweep`: train every point of a grid, audit and gate each, and chart the trade-offs.

Each point is one governed run (:func:`~ethos.pipeline.run_pipeline`: train, "run"
ledger entry, audit, gate with its "decision" entry, card), so a sweep of 16 points is 16 runs in
the ledger, each as traceable as one started by `ethos run`. Points are trained one after another
in this process, or as Ray tasks (``ray=``, :mod:`ethos.sweep.ray_backend`); both run the same
job per point (:mod:`ethos.sweep.point`) and this module measures every outcome the same way, so
the two write the same sweep.json and page. The engine's own Accelerate launch path is how one
spreads one run's training over GPUs.

The sweep folder (``--out``) holds ``runs/`` (one run directory per point), ``sweep.json`` (every
point: its values, accuracy, fairness gap, ε, W, decision, whether it is on each Pareto front,
whether its model is informative) and ``index.html`` (the page). A point whose model is not
informative (``audit.informativeness.informative`` false) is never on a front. Both files are
rewritten atomically after every point, so a long sweep can be watched and a killed one still
shows what finished. A point whose run fails is recorded with its error and the sweep goes on;
its unfinished run folder, if any, is moved to ``runs/.failed/`` so ``runs/`` holds only
finished runs.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ethos.config import RunConfig
from ethos.errors import EthosError
from ethos.rundir import RunDir, atomic_write_text
from ethos.sweep.grid import (
    DEFAULT_MAX_POINTS,
    Grid,
    GridError,
    expand,
    jsonable,
    parse_grid,
)
from ethos.sweep.page import render_page
from ethos.sweep.pareto import non_dominated
from ethos.sweep.point import (
    FAILED,
    PointJob,
    PointOutcome,
    make_jobs,
    run_point,
    set_aside,
    unfinished,
)
from ethos.training.distributed import launched as launched_processes

if TYPE_CHECKING:
    from ethos.sweep.ray_backend import RaySession

SWEEP_JSON = "sweep.json"
PAGE = "index.html"
RUNS = "runs"
CLAIMS = ".claims"  # OUT/.claims/<index>.json: the run folder each Ray task is writing
ACCURACY_METRIC = "metrics.test.accuracy"
EQUALIZED_ODDS = "equalized_odds_difference"
DEFAULT_GAP_METRIC = f"fairness.*.disparities.{EQUALIZED_ODDS}.value"
FRONTS = {
    # name: (x field, maximize x, y field, maximize y)
    "accuracy_vs_fairness_gap": ("fairness_gap", False, "accuracy", True),
    "accuracy_vs_epsilon": ("epsilon", False, "accuracy", True),
}
Status = Literal["pending", "done", "failed"]


@dataclass
class SweepPoint:
    """One grid point and what its run measured; ``epsilon`` is ``inf`` for a non-private run."""

    index: int
    values: dict[str, Any]
    label: str
    status: Status = "pending"
    run_id: str | None = None
    run_dir: str | None = None
    accuracy: float | None = None
    fairness_gap: float | None = None
    fairness_gap_metric: str | None = None
    group_accuracy: dict[str, float] = field(default_factory=dict)
    """Accuracy per group of the gap's attribute: privacy and mitigation often cost some groups
    more than others, and the overall accuracy hides it."""
    epsilon: float = math.inf
    welfare: float | None = None
    decision: str | None = None
    broken: list[str] = field(default_factory=list)
    ledger_entry: str | None = None
    error: str | None = None
    seconds: float | None = None
    fronts: list[str] = field(default_factory=list)
    informative: bool | None = None
    """The audit's informativeness verdict (None: not assessed). A point that is not informative
    (a constant prediction, accuracy not above the majority baseline, or AUROC not above chance)
    is marked on the page and never put on a Pareto front: its fairness gap of 0 is not a merit."""

    @property
    def private(self) -> bool:
        return math.isfinite(self.epsilon)

    def to_json(self) -> dict[str, Any]:
        """JSON has no infinity: a non-private run has ``"epsilon": null, "private": false``."""
        return {
            "index": self.index,
            "label": self.label,
            "values": {k: jsonable(v) for k, v in self.values.items()},
            "status": self.status,
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "accuracy": _finite_or_none(self.accuracy),
            "fairness_gap": _finite_or_none(self.fairness_gap),
            "fairness_gap_metric": self.fairness_gap_metric,
            "group_accuracy": {k: _finite_or_none(v) for k, v in self.group_accuracy.items()},
            "epsilon": _finite_or_none(self.epsilon),
            "private": self.private,
            "welfare": _finite_or_none(self.welfare),
            "decision": self.decision,
            "broken": self.broken,
            "ledger_entry": self.ledger_entry,
            "error": self.error,
            "seconds": self.seconds,
            "fronts": self.fronts,
            "informative": self.informative,
        }

    def summary(self) -> str:
        if self.status != "done":
            return f"{self.status}" + (f": {self.error}" if self.error else "")
        eps = f"ε {self.epsilon:g}" if self.private else "ε ∞ (non-private)"
        line = (
            f"accuracy {_fmt(self.accuracy)}, EO gap {_fmt(self.fairness_gap)}, {eps}, "
            f"W {_fmt(self.welfare)} -> {self.decision}"
        )
        if self.informative is False:
            line += " [not informative: kept off the Pareto fronts]"
        return line


@dataclass
class SweepResult:
    """The sweep folder and its points; ``exit_code`` is 0 when every point ran, else 1."""

    path: Path
    grid: Grid
    policy: str
    threshold: float
    gap_metric: str
    points: list[SweepPoint]

    @property
    def page(self) -> Path:
        return self.path / PAGE

    @property
    def json_path(self) -> Path:
        return self.path / SWEEP_JSON

    @property
    def failed(self) -> list[SweepPoint]:
        return [p for p in self.points if p.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def front(self, name: str) -> list[SweepPoint]:
        return [p for p in self.points if name in p.fronts]

    def __repr__(self) -> str:
        lines = [f"SweepResult({self.path}, {self.grid!r}, policy {self.policy})"]
        for p in self.points:
            marks = "".join("*" if name in p.fronts else " " for name in FRONTS)
            marks += "!" if p.informative is False else " "
            lines.append(f"  {marks} #{p.index + 1} {p.label}: {p.summary()}")
        lines.append(
            "  (* on the accuracy/fairness front, then the accuracy/ε front; ! not informative)"
        )
        return "\n".join(lines)


def sweep(
    config: RunConfig,
    grid: Grid | Sequence[str],
    *,
    policy: str | None = None,
    ledger_url: str | None = None,
    out: str | Path | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    quiet: bool = False,
    base_dir: Path | None = None,
    source: str | Path = "the base config",
    actor: str | None = None,
    log: Callable[[str], Any] = print,
    ray: str | None = None,
    cpus_per_point: float = 1.0,
    gpus_per_point: float = 0.0,
) -> SweepResult:
    """Train, audit and gate every grid point of ``config``; write sweep.json and index.html.

    ``grid`` is a :class:`Grid` or ``--grid`` strings (``"fairness.lambda=[0,1]"``). Every point,
    the policy and the ledger are checked before the first run trains. ``base_dir`` resolves
    relative paths in grid values (the config file's folder); ``source`` names the config in
    messages.

    ``ray``: run the points as Ray tasks instead of one after another here: ``"local"`` starts
    a Ray instance on this machine; ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` connects
    to a running cluster (a Ray connection this process already has is used as it is). Each task
    declares ``cpus_per_point`` CPUs and ``gpus_per_point`` GPUs (see
    :mod:`ethos.sweep.ray_backend`). Ray is connected before the folder is made, so an address
    that does not answer writes nothing.
    """
    from ethos.governance.gate import current_actor
    from ethos.governance.ledger import Ledger
    from ethos.governance.policy import load_policy

    if not isinstance(grid, Grid):
        grid = parse_grid(list(grid), max_points=max_points)
    elif grid.size > max_points:
        raise GridError(f"the grid has {grid.size} points, more than max_points {max_points}")
    points = expand(config, grid, source=source, base_dir=base_dir)
    policy_source = policy or config.policy
    if policy_source is None:
        raise EthosError(
            "no policy: the config names none and --policy was not given",
            hint="add `policy: criminal-justice` (or medical, credit, or a file) to the config",
        )
    loaded = load_policy(policy_source, subject="model")
    Ledger.open(ledger_url).close()
    gap_metric = fairness_gap_metric(loaded)
    processes = launched_processes()
    main, launched = processes.main, processes.several
    if out is None and launched:
        raise EthosError(
            "a sweep under `accelerate launch` needs --out",
            hint="every process must write to the same folder: give --out DIR",
        )
    if ray is not None and launched:
        raise EthosError(
            "--ray does not run under `accelerate launch`",
            hint="run `ethos sweep --ray ...` directly: Ray places the points on its workers",
        )
    with ExitStack() as stack:
        session = None
        if ray is not None:
            from ethos.sweep.ray_backend import ray_session

            session = stack.enter_context(
                ray_session(ray, cpus_per_point=cpus_per_point, gpus_per_point=gpus_per_point)
            )
        folder = prepare_folder(Path(out) if out is not None else default_folder(config), new=main)
        result = SweepResult(
            path=folder,
            grid=grid,
            policy=str(policy_source),
            threshold=loaded.threshold,
            gap_metric=gap_metric,
            points=[SweepPoint(p.index, p.values, p.label) for p in points],
        )
        driver = _Driver(
            result,
            created=datetime.now(UTC).isoformat(),
            source=str(source),
            log=log if main else _silent,  # the other processes of a launch write no files
            write=main,
        )
        if session is not None:  # what a worker elsewhere would resolve differently
            from ethos.sweep.ray_backend import ledger_url_for_workers

            ledger_url, actor = ledger_url_for_workers(ledger_url), actor or current_actor()
        jobs = make_jobs(
            points,
            folder / RUNS,
            policy=str(policy_source),
            ledger_url=ledger_url,
            actor=actor,
            quiet=quiet,
            claims=folder / CLAIMS if session is not None else None,
            threads=max(1, int(cpus_per_point)) if session is not None else None,
        )
        driver.write()
        total = len(points)
        where = f" {session.describe()}" if session is not None else ""
        driver.log(f"sweep of {total} point{'s' * (total != 1)} into {folder}{where}")
        if session is None:
            driver.in_process(jobs)
        else:
            driver.on_ray(session, jobs)
    on_front = len(result.front("accuracy_vs_fairness_gap"))
    driver.log(
        f"wrote {result.page} and {result.json_path}: {total - len(result.failed)} of {total} "
        f"points ran, {on_front} on the accuracy/fairness front"
    )
    return result


class _Driver:
    """The driver's side of a sweep: settle each point's outcome, keep the files current."""

    def __init__(
        self,
        result: SweepResult,
        *,
        created: str,
        source: str,
        log: Callable[[str], Any],
        write: bool,
    ) -> None:
        self.result, self.created, self.source = result, created, source
        self.log, self.write_files = log, write

    @property
    def runs(self) -> Path:
        return self.result.path / RUNS

    def write(self) -> None:
        if self.write_files:
            write_outputs(self.result, created=self.created, source=self.source)

    def tag(self, point: SweepPoint) -> str:
        return f"[{point.index + 1}/{len(self.result.points)}] {point.label}"

    def settle(self, outcome: PointOutcome) -> None:
        """Fill the point from its outcome (measured from its run folder), then write and log.

        A failed point's unfinished run folder is moved into ``runs/.failed/`` (and named), so
        ``runs/`` holds only finished runs.
        """
        point = self.result.points[outcome.index]
        point.seconds = outcome.seconds
        if outcome.status == "done" and outcome.run_path is not None:
            measure(point, RunDir.open(outcome.run_path), self.result.gap_metric, self.result.path)
            point.welfare, point.decision = outcome.welfare, outcome.decision
            point.broken = list(outcome.broken)
            point.status = "done"
        else:
            point.status, point.error = "failed", outcome.error
            left = Path(outcome.run_path) if outcome.run_path is not None else None
            if left is not None and self.write_files:  # one process of a launch moves it
                kept = set_aside(left)
            else:
                kept = left if left is not None and left.is_dir() else None
            if kept is not None:  # what the failed run left, named
                point.run_id, point.run_dir = kept.name, _relative(kept, self.result.path)
        self.write()
        took = f" ({point.seconds:.0f} s)" if point.seconds is not None else ""
        self.log(f"{self.tag(point)}: {point.summary()}{took}")

    def in_process(self, jobs: Sequence[PointJob]) -> None:
        """One point after another in this process (under a launch, in step with the others)."""
        for job, point in zip(jobs, self.result.points, strict=True):
            self.log(f"{self.tag(point)}: train, audit, gate ...")
            before = _run_dirs(self.runs)
            try:
                outcome = run_point(job, log=lambda message: self.log(f"    {message}"))
            except BaseException:
                point.status, point.error = "failed", "interrupted"
                self.write()
                raise
            if outcome.status == "failed" and outcome.run_path is None:
                # A pipeline that failed before reporting its folder: the only new one is its.
                fresh = sorted(_run_dirs(self.runs) - before)
                if len(fresh) == 1:
                    outcome.run_path = str(self.runs / fresh[0])
            self.settle(outcome)

    def on_ray(self, session: RaySession, jobs: Sequence[PointJob]) -> None:
        """Every point as a Ray task; each is settled as it finishes, in any order."""
        claims = self.result.path / CLAIMS
        try:
            with closing(session.run(jobs, claims=claims)) as outcomes:
                for outcome in outcomes:
                    self.settle(outcome)
        except BaseException:
            for point in self.result.points:
                if point.status == "pending":
                    point.status, point.error = "failed", "interrupted"
            raise
        finally:
            # Every task has ended: a folder still unfinished belongs to no running point.
            for leftover in unfinished(self.runs):
                set_aside(leftover)
                self.log(f"moved the unfinished run folder {leftover.name} to {FAILED}/")
            shutil.rmtree(claims, ignore_errors=True)
            self.write()


def fairness_gap_metric(policy: Any) -> str:
    """The equalized-odds difference the policy cares about, as a metric path.

    The first constraint or indicator on ``fairness.<attribute>.disparities.
    equalized_odds_difference.value`` that names an attribute; else one over ``*`` (the worst
    attribute); else :data:`DEFAULT_GAP_METRIC`.
    """
    from ethos.governance.metric_paths import split_path

    paths = [c.metric for c in policy.constraints] + [i.metric for i in policy.indicators()]
    wanted = ["fairness", "*", "disparities", EQUALIZED_ODDS, "value"]
    named = [
        path
        for path, (document, keys) in ((p, split_path(p)) for p in paths)
        if document == "audit" and len(keys) == 5 and keys[:1] + keys[2:] == wanted[:1] + wanted[2:]
    ]
    concrete = [p for p in named if "*" not in p]
    return (concrete or named or [DEFAULT_GAP_METRIC])[0]


def measure(point: SweepPoint, run: Any, gap_metric: str, folder: Path) -> None:
    """Fill ``point`` from the run's documents: accuracy, fairness gap, ε, ledger entry."""
    from ethos.governance.gate import run_documents
    from ethos.governance.metric_paths import lookup

    documents, _ = run_documents(run)
    manifest = documents["manifest"]
    point.run_id = str(manifest["run_id"])
    point.run_dir = _relative(run.path, folder)
    point.accuracy = lookup(documents, ACCURACY_METRIC, larger_is_worse=False).value
    gap = lookup(documents, gap_metric, larger_is_worse=True)
    point.fairness_gap = gap.value
    point.fairness_gap_metric = gap.resolved or gap_metric
    point.group_accuracy = group_accuracy(documents.get("audit") or {}, point.fairness_gap_metric)
    point.epsilon = planned_epsilon(manifest)
    point.informative = informative(documents.get("audit") or {})
    decision = run.decision()
    if decision is not None:
        entry = decision.get("ledger") or {}
        if entry.get("entry_hash"):
            point.ledger_entry = f"#{entry.get('seq')} {entry['entry_hash']}"


def group_accuracy(audit: dict[str, Any], gap_metric: str | None) -> dict[str, float]:
    """``audit.fairness.<attribute>.groups.<value>.accuracy`` for the gap's attribute, for the
    groups large enough to enter the disparities."""
    from ethos.governance.metric_paths import split_path

    document, keys = split_path(gap_metric or "")
    if document != "audit" or len(keys) < 2 or keys[0] != "fairness":
        return {}
    section = ((audit.get("fairness") or {}).get(keys[1]) or {}).get("groups") or {}
    out: dict[str, float] = {}
    for value, row in section.items():
        if isinstance(row, dict) and row.get("used_for_disparities", True):
            accuracy = row.get("accuracy")
            if isinstance(accuracy, int | float):
                out[str(value)] = float(accuracy)
    return out


def informative(audit: dict[str, Any]) -> bool | None:
    """``audit.informativeness.informative``; None when the audit has no such verdict."""
    value = (audit.get("informativeness") or {}).get("informative")
    return value if isinstance(value, bool) else None


def planned_epsilon(manifest: dict[str, Any]) -> float:
    """``manifest["training"]["privacy"]["epsilon"]``; missing or not a positive number: ∞."""
    privacy = (manifest.get("training") or {}).get("privacy")
    value = privacy.get("epsilon") if isinstance(privacy, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return math.inf


def mark_fronts(points: list[SweepPoint]) -> None:
    """Set each point's ``fronts``: the names of the Pareto fronts (:data:`FRONTS`) it is on.

    A point that is not informative is on none and dominates none (see :class:`SweepPoint`).
    """
    for point in points:
        point.fronts = []
    done = [p for p in points if p.status == "done"]
    if not done:
        return
    eligible = [p.informative is not False for p in done]
    for name, (x_field, max_x, y_field, max_y) in FRONTS.items():
        table = [[_nan(getattr(p, x_field)), _nan(getattr(p, y_field))] for p in done]
        mask = non_dominated(table, maximize=[max_x, max_y], eligible=eligible)
        for point, on_front in zip(done, mask.tolist(), strict=True):
            if on_front:
                point.fronts.append(name)


def sweep_document(result: SweepResult, *, created: str, source: str) -> dict[str, Any]:
    """What sweep.json holds (and the page is drawn from)."""
    mark_fronts(result.points)
    return {
        "created_utc": created,
        "updated_utc": datetime.now(UTC).isoformat(),
        "config": source,
        "policy": result.policy,
        "threshold": result.threshold,
        "grid": [
            {"key": a.key, "name": a.name, "values": [jsonable(v) for v in a.values]}
            for a in result.grid.axes
        ],
        "metrics": {
            "accuracy": ACCURACY_METRIC,
            "fairness_gap": result.gap_metric,
            "epsilon": "manifest.training.privacy.epsilon (missing: non-private, ε = ∞)",
        },
        "points": [p.to_json() for p in result.points],
        "fronts": {name: [p.index for p in result.front(name)] for name in FRONTS},
    }


def write_outputs(result: SweepResult, *, created: str, source: str) -> None:
    """sweep.json and index.html, each replaced atomically."""
    document = sweep_document(result, created=created, source=source)
    text = json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    atomic_write_text(result.path / SWEEP_JSON, text)
    atomic_write_text(result.path / PAGE, render_page(document))


def default_folder(config: RunConfig) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(config.output_dir) / f"sweep-{stamp}"


def prepare_folder(out: Path, *, new: bool = True) -> Path:
    """The sweep folder, resolved; a new or empty folder only (a sweep never overwrites).

    ``new=False`` (the other processes of a launch) only makes sure it exists.
    """
    folder = out.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise EthosError(f"--out {out} is a file, not a folder", hint="give a folder path")
    if new and folder.is_dir() and any(folder.iterdir()):
        raise EthosError(
            f"--out {folder} already exists and is not empty",
            hint="give a new folder: a sweep never writes over another sweep or other files",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EthosError(f"cannot create --out {folder}: {exc.strerror}") from None
    return folder


def _silent(message: str) -> None:
    return None


def _run_dirs(runs: Path) -> set[str]:
    if not runs.is_dir():
        return set()
    return {p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _relative(path: Path, folder: Path) -> str:
    """``path`` as sweep.json names it: relative to the sweep folder when inside it."""
    try:
        return path.resolve().relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"
