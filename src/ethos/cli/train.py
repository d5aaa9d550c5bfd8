"""`ethos train`: fine-tune one config (or resume a run) and report where the run lives."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ethos.cli.output import console, err_console
from ethos.cli.report import report_run
from ethos.errors import EthosError

if TYPE_CHECKING:
    from ethos import RunConfig


def train_command(
    config_path: Path | None = typer.Argument(
        None, metavar="CONFIG", help="Run config (YAML). Not needed with --resume."
    ),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        metavar="RUN_DIR",
        help="Continue a killed or interrupted run from its newest checkpoint; it ends with the "
        "same model and metrics as an uninterrupted run.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    output_dir: Path | None = typer.Option(None, help="Overrides output_dir from the config."),
) -> None:
    """Fine-tune the configured model and write a run directory (model, manifest, metrics).

    The run directory is created and printed at the start and gets a checkpoint after every
    epoch; Ctrl-C stops after the current step with a checkpoint and prints the command that
    continues the run (`ethos train --resume RUN_DIR`).
    """
    from ethos import load_config

    if resume is not None:
        if config_path is not None:
            raise EthosError(
                "give either CONFIG or --resume RUN_DIR, not both",
                hint="a resumed run uses the config.yaml saved in its run directory",
            )
        _train_and_report(None, quiet=quiet, resume=resume)
        return
    if config_path is None:
        raise EthosError(
            "missing CONFIG", hint="ethos train CONFIG, or ethos train --resume RUN_DIR"
        )
    config = load_config(config_path)
    if output_dir is not None:
        config = config.model_copy(update={"output_dir": output_dir})
    _train_and_report(config, quiet=quiet)


def _train_and_report(config: RunConfig | None, *, quiet: bool, resume: Path | None = None) -> None:
    """Train ``config`` (or resume the run in ``resume``), saying first where the run lives.

    The folder is printed as soon as it exists, because it is what ``--resume`` needs if the
    process dies; earlier unfinished runs of the same config are named, but a new run is still
    started (the user may want a fresh one, and nothing here asks). Ctrl-C ends with one line
    holding the exact resume command and exit code 130, not a traceback.
    """
    import shlex

    from ethos import resume_run, train
    from ethos.training.interrupt import Interrupted
    from ethos.training.run import RunStart

    def started(start: RunStart) -> None:
        for earlier in start.unfinished:
            err_console.print(
                f"note: {earlier} is an unfinished run of this config; continue it with "
                f"`ethos train --resume {shlex.quote(str(earlier))}` (starting a new run now)",
                markup=False,
                soft_wrap=True,
            )
        where = f" (resuming from {start.checkpoint.name})" if start.checkpoint else ""
        console.print(f"run directory: {start.path}{where}", markup=False)

    try:
        if resume is not None:
            run = resume_run(resume, quiet=quiet, on_start=started)
        else:
            assert config is not None
            run = train(config, quiet=quiet, on_start=started)
    except Interrupted as stopped:
        saved = f"checkpoint {stopped.checkpoint.name}" if stopped.checkpoint else "no checkpoint"
        err_console.print(
            f"interrupted ({saved}); continue with: "
            f"ethos train --resume {shlex.quote(str(stopped.run_dir))}",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    report_run(run)
