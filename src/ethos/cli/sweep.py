"""`ethos sweep`: train a grid of configs as governed runs and chart their Pareto fronts."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console


def sweep_command(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Base run config (YAML)."),
    grid: list[str] = typer.Option(
        [],
        "--grid",
        "-g",
        metavar="KEY=[VALUES]",
        help="A config key and the values to try, e.g. 'fairness.lambda=[0,0.5,1]' or "
        "'privacy.epsilon=[1,8,inf]'; repeat for more keys (the sweep is their product). Keys "
        "that are not a top-level section are read below train.",
    ),
    policy: str | None = typer.Option(
        None, "--policy", "-p", help="Overrides the config's policy (file or bundled name)."
    ),
    ledger: str | None = typer.Option(
        None,
        "--ledger",
        help="Ledger URL (default $ETHOS_LEDGER_URL, else ~/.ethos/ledger.db). With --ray every "
        "worker appends to this one ledger: on a cluster, a PostgreSQL URL all nodes reach.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="DIR",
        help="New (or empty) folder for runs/, sweep.json and index.html; default "
        "OUTPUT_DIR/sweep-<time>.",
    ),
    max_points: int = typer.Option(
        64, "--max-points", min=1, help="Refuse a grid with more points than this."
    ),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS",
        help="Run the points as Ray tasks: 'local' starts Ray on this machine; 'auto', "
        "HOST:PORT or ray://HOST:PORT uses a running cluster whose workers have ethos installed "
        "and see --out (a shared filesystem). Needs: pip install 'ethos[scale]'.",
    ),
    cpus_per_point: float = typer.Option(
        1.0,
        "--cpus-per-point",
        min=0.01,
        help="With --ray: CPUs each point's task declares (and torch threads it uses).",
    ),
    gpus_per_point: float = typer.Option(
        0.0,
        "--gpus-per-point",
        min=0.0,
        help="With --ray: GPUs each point's task declares (e.g. 1, or 0.5 to share one).",
    ),
) -> None:
    """Train a grid of configs, audit and gate every run, and write a page of Pareto fronts.

    Each point is a governed run (as `ethos run`) with its own ledger entries. The page
    (OUT/index.html) shows accuracy against the fairness gap and against ε, each with its Pareto
    front, W for every point, and a table of all points with their decisions. Points train one
    after another in this process; with --ray they run as Ray tasks on a local instance or a
    cluster (each appends to the same ledger; a point whose worker dies is recorded as failed,
    not retried, and its unfinished folder moved to OUT/runs/.failed/). To spread one run's
    training over GPUs use the engine's Accelerate launch path (`accelerate launch -m ethos sweep
    ... --out DIR`). See docs/sweep.md.

    Every point is validated before anything trains. Exit code: 0 when every point ran (whatever
    its decision), 1 when some point failed (recorded with its error), 2 for a user error.
    """
    from ethos import load_config, run_sweep

    config = load_config(config_path)
    result = run_sweep(
        config,
        grid,
        policy=policy,
        ledger_url=ledger,
        out=out,
        max_points=max_points,
        quiet=quiet,
        base_dir=config_path.parent,
        source=str(config_path),
        log=lambda m: console.print(m, markup=False),
        ray=ray,
        cpus_per_point=cpus_per_point,
        gpus_per_point=gpus_per_point,
    )
    raise typer.Exit(result.exit_code)
